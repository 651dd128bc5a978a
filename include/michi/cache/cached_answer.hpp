#pragma once
// One answer as the response cache keeps it: what the client got the first time (a whole
// answer with its status and type, or a stream's events, byte for byte), what served it and
// what it cost, and when it expires. Encoded as bytes for Redis.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace michi::cache {

struct cached_answer {
    bool stream = false; // the body is an SSE stream's events, else a whole answer
    unsigned status = 200;
    std::string content_type;    // a whole answer's
    std::string model;           // the provider/model that served it (x-michi-model)
    std::string body;            // the body's bytes as the client got them
    std::uint64_t cost_nano = 0; // what it cost then: what each hit saves
    std::int64_t expires_ms = 0; // Unix milliseconds
    // A whole answer's head lines as every hit writes them, made once (make_fields): its
    // Content-Type and Content-Length (empty for a status without a body), and x-michi-model's.
    std::string lead;
    std::string model_field;

    // What it takes in memory (for the cache's bound).
    std::size_t bytes() const noexcept {
        return sizeof(cached_answer) + content_type.size() + model.size() + body.size() +
               lead.size() + model_field.size();
    }
};

// Makes a whole answer's lead and model_field (nothing for a stream's events).
void make_fields(cached_answer& a);

// "MC1 <stream> <status> <expires_ms> <cost_nano> <type bytes> <model bytes> <body bytes>\n"
// then the three texts.
std::string encode(const cached_answer& a);
// Nullopt for bytes that are not an encoded answer.
std::optional<cached_answer> decode(std::string_view bytes);

} // namespace michi::cache
