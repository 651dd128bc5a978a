#include "michi/redis/redis_protocol.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace michi::redis {
namespace {

// CRC16-CCITT (XModem), as Redis Cluster hashes keys.
constexpr std::array<std::uint16_t, 256> crc16_table = [] {
    std::array<std::uint16_t, 256> t{};
    for (unsigned i = 0; i < 256; ++i) {
        unsigned c = i << 8;
        for (int b = 0; b < 8; ++b) {
            c = (c & 0x8000U) != 0 ? (c << 1) ^ 0x1021U : c << 1;
        }
        t[i] = static_cast<std::uint16_t>(c & 0xffffU);
    }
    return t;
}();

std::uint16_t crc16(std::string_view s) {
    unsigned crc = 0;
    for (const char ch : s) {
        crc = ((crc << 8) & 0xffffU) ^
              crc16_table[((crc >> 8) ^ static_cast<unsigned char>(ch)) & 0xffU];
    }
    return static_cast<std::uint16_t>(crc);
}

// The reader's callbacks: each reply a redis_value, an array's elements made in place in
// their parent's vector (the root alone is allocated; freeing it frees the tree).
redis_value* place(const redisReadTask* task) {
    if (task->parent != nullptr) {
        auto* parent = static_cast<redis_value*>(task->parent->obj);
        return &parent->elements[static_cast<std::size_t>(task->idx)];
    }
    return new redis_value();
}

void* make_string(const redisReadTask* task, char* s, std::size_t n) {
    redis_value* v = place(task);
    v->type = task->type == REDIS_REPLY_ERROR    ? redis_value::kind::error
              : task->type == REDIS_REPLY_STATUS ? redis_value::kind::status
                                                 : redis_value::kind::string;
    v->str.assign(s, n);
    return v;
}

void* make_array(const redisReadTask* task, int n) {
    redis_value* v = place(task);
    v->type = redis_value::kind::array;
    v->elements.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return v;
}

void* make_integer(const redisReadTask* task, long long n) {
    redis_value* v = place(task);
    v->type = redis_value::kind::integer;
    v->integer = n;
    return v;
}

void* make_nil(const redisReadTask* task) { return place(task); }

void free_value(void* v) { delete static_cast<redis_value*>(v); }

redisReplyObjectFunctions value_functions{make_string, make_array, make_integer, make_nil,
                                          free_value};

} // namespace

double redis_number(const redis_value& v) {
    if (v.type == redis_value::kind::integer) {
        return static_cast<double>(v.integer);
    }
    if (v.type == redis_value::kind::string || v.type == redis_value::kind::status) {
        char* end = nullptr;
        const double d = std::strtod(v.str.c_str(), &end);
        return end != v.str.c_str() ? d : 0.0;
    }
    return 0.0;
}

int redis_key_slot(std::string_view key) {
    if (const auto open = key.find('{'); open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) {
            key = key.substr(open + 1, close - open - 1);
        }
    }
    return crc16(key) & (redis_slots - 1);
}

redis_command::redis_command(const std::vector<std::string>& args) {
    for (const auto& a : args) {
        arg(a);
    }
    if (args.size() < 2) {
        return;
    }
    std::string name = args[0];
    for (auto& c : name) {
        c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    if (name == "EVAL" || name == "EVALSHA") {
        if (args.size() > 3 && args[2] != "0") {
            slot = redis_key_slot(args[3]);
        }
    } else if (name != "AUTH" && name != "SELECT" && name != "PING" && name != "SENTINEL" &&
               name != "CLUSTER" && name != "ROLE" && name != "SCRIPT" && name != "INFO") {
        slot = redis_key_slot(args[1]);
    }
}

redis_command& redis_command::arg(std::string_view a) {
    // "$<length>\r\n<a>\r\n", written in one piece (a batch's call has hundreds of these)
    char head[24];
    head[0] = '$';
    char* end = std::to_chars(head + 1, head + sizeof head - 2, a.size()).ptr;
    *end++ = '\r';
    *end++ = '\n';
    const auto head_size = static_cast<std::size_t>(end - head);
    const std::size_t at = body_.size();
    if (body_.capacity() < at + head_size + a.size() + 2) {
        body_.reserve(std::max<std::size_t>(2 * body_.capacity(), at + head_size + a.size() + 2));
    }
    body_.resize(at + head_size + a.size() + 2);
    char* out = body_.data() + at;
    std::memcpy(out, head, head_size);
    if (!a.empty()) {
        std::memcpy(out + head_size, a.data(), a.size());
    }
    out[head_size + a.size()] = '\r';
    out[head_size + a.size() + 1] = '\n';
    ++count_;
    return *this;
}

redis_command& redis_command::arg(long long n) {
    char text[24];
    const auto r = std::to_chars(text, text + sizeof text, n);
    return arg(std::string_view(text, static_cast<std::size_t>(r.ptr - text)));
}

redis_command& redis_command::append(const redis_command& more) {
    body_ += more.body_;
    count_ += more.count_;
    if (slot < 0) {
        slot = more.slot;
    }
    return *this;
}

std::string redis_command::bytes() const {
    char head[24];
    const auto r = std::to_chars(head, head + sizeof head, count_);
    std::string out;
    out.reserve(body_.size() + 26);
    out += '*';
    out.append(head, r.ptr);
    out += "\r\n";
    out += body_;
    return out;
}

redis_reader::redis_reader()
    : reader_(redisReaderCreateWithFunctions(&value_functions), redisReaderFree) {
    if (!reader_) {
        throw std::bad_alloc();
    }
}

redis_reader::~redis_reader() = default;

bool redis_reader::feed(const char* data, std::size_t n) {
    return redisReaderFeed(reader_.get(), data, n) == REDIS_OK;
}

int redis_reader::next(redis_value& out) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
        return -1;
    }
    if (raw == nullptr) {
        return 0;
    }
    std::unique_ptr<redis_value> v(static_cast<redis_value*>(raw));
    out = std::move(*v);
    return 1;
}

std::string redis_reader::error() const { return reader_->errstr; }

} // namespace michi::redis
