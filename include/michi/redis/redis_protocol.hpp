#pragma once
// The Redis protocol (RESP2) as the gateway speaks it: a reply as a value, commands written
// straight into one buffer, a reply reader (hiredis's parser building redis_values directly),
// and the Redis Cluster slot of a key.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace michi::redis {

// One reply.
struct redis_value {
    enum class kind { nil, integer, string, status, error, array };
    kind type = kind::nil;
    long long integer = 0;
    std::string str; // string, status and error replies
    std::vector<redis_value> elements;

    bool is_error() const { return type == kind::error; }
};

// A reply's element as a number: integers as they are, strings parsed (Lua returns
// fractional numbers as strings); 0 when neither.
double redis_number(const redis_value& v);

// The number of slots of a Redis Cluster, and the slot of a key (CRC16 of the key, or of its
// hash tag: the text between the first '{' and the next '}' when that is not empty).
inline constexpr int redis_slots = 16384;
int redis_key_slot(std::string_view key);

// One command being written: its arguments appended one by one, then the whole taken as the
// bytes to send. slot: the cluster slot of its keys (-1: none, any node may take it).
class redis_command {
public:
    redis_command() = default;
    // A command of these arguments, its slot that of its first key (EVAL/EVALSHA: the first of
    // its KEYS; most others: the argument after the name).
    explicit redis_command(const std::vector<std::string>& args);

    redis_command& arg(std::string_view a);
    redis_command& arg(long long n);
    // Another command's arguments after these (its slot too when this one has none).
    redis_command& append(const redis_command& more);
    std::size_t size() const { return count_; }
    // Room for this many more bytes of arguments (a command about to take a long tail).
    void reserve(std::size_t more) { body_.reserve(body_.size() + more); }
    std::size_t body_size() const { return body_.size(); }
    // "*<count>\r\n" and the arguments: what goes on the wire.
    std::string bytes() const;

    int slot = -1;

private:
    std::string body_;
    std::size_t count_ = 0;
};

// Reads replies from the bytes Redis sends, in pieces of any size.
class redis_reader {
public:
    redis_reader();
    ~redis_reader();
    redis_reader(const redis_reader&) = delete;
    redis_reader& operator=(const redis_reader&) = delete;

    // False when the bytes are not RESP (error() says why).
    bool feed(const char* data, std::size_t n);
    // The next whole reply, if one arrived: 1; none yet: 0; a protocol error: -1.
    int next(redis_value& out);
    std::string error() const;

private:
    std::unique_ptr<redisReader, void (*)(redisReader*)> reader_;
};

} // namespace michi::redis
