#include "michi/store/change_counter.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace michi::store {

namespace {
constexpr std::size_t map_bytes = sizeof(std::uint64_t);
} // namespace

change_counter::change_counter(const std::string& path, std::string& error) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        error = path + ": " + std::strerror(errno);
        return;
    }
    struct stat st {};
    // (Two processes may create it at once: growing it to 8 bytes twice is harmless.)
    if (::fstat(fd, &st) != 0 ||
        (st.st_size < static_cast<off_t>(map_bytes) && ::ftruncate(fd, map_bytes) != 0)) {
        error = path + ": " + std::strerror(errno);
        ::close(fd);
        return;
    }
    void* p = ::mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int mmap_errno = errno;
    ::close(fd); // (the mapping keeps the file)
    if (p == MAP_FAILED) {
        error = path + ": " + std::strerror(mmap_errno);
        return;
    }
    word_ = static_cast<std::uint64_t*>(p);
}

change_counter::~change_counter() {
    if (word_ != nullptr) {
        ::munmap(word_, map_bytes);
    }
}

} // namespace michi::store
