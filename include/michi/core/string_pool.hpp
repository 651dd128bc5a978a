#pragma once
// Spare strings of one worker, handed from a finished request to the next so that building
// an upstream request (head and body) usually allocates nothing. A few are kept, none larger
// than a usual body. Used by one thread only.

#include <cstddef>
#include <string>
#include <vector>

namespace michi {

class string_pool {
public:
    static constexpr std::size_t max_kept = 32;
    static constexpr std::size_t max_room = 64 * 1024;

    // An empty string, with the room of a spare one when there is one.
    std::string take() {
        if (spare_.empty()) {
            return {};
        }
        std::string s = std::move(spare_.back());
        spare_.pop_back();
        return s;
    }
    // Keeps s's storage for a later take() when it is worth keeping; s is left empty.
    void give(std::string& s) {
        if (s.capacity() > 15 && s.capacity() <= max_room && spare_.size() < max_kept) {
            s.clear();
            spare_.push_back(std::move(s));
        }
        std::string().swap(s);
    }

private:
    std::vector<std::string> spare_;
};

} // namespace michi
