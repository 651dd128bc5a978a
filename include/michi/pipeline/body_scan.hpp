#pragma once
// What admission reads of a chat completions body, by a structural scan of its bytes
// instead of a full JSON parse. A parse into nlohmann::json costs about 80 instructions a
// byte (an 11 KB conversation: a million instructions, three quarters of the request's
// work); the scan costs a few. The scan answers only for a clean, ordinary request and
// otherwise leaves the decision to the full parse, so every error message, and every
// value read, stays the full parse's.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace michi::pipeline {

// The members of a chat request admission and routing read.
struct body_facts {
    std::string model;           // "model", a non-empty string
    std::size_t model_begin = 0; // where its value (the quoted string) is in the body;
                                 // model_end 0: not known (the body was parsed instead)
    std::size_t model_end = 0;
    bool stream = false;             // "stream" is true
    bool wants_usage = false;        // "stream_options": {"include_usage": true}
    bool has_stream_options = false; // the "stream_options" member is there (even null)
    bool tools = false;              // "tools" is a non-empty array
    bool images = false;             // a message has a content part of type image_url
    std::uint64_t max_output = 0;    // max_completion_tokens, else max_tokens, else default
    std::uint64_t prompt_tokens = 0; // providers::estimate_prompt_tokens of the body
};

// The facts of a chat completions body (OpenAI form), or nullopt when the full parse has
// to decide: text the scan cannot follow, a key written with escapes or given twice where
// the scan reads, a member of a type admission would refuse (no model, messages not a
// non-empty array of objects with a string role, stream not a boolean, ...), a string it
// reads with an invalid escape, or members it leaves to the full path ("system",
// "input"). What the scan accepts is the same as what the parse would read; the scan does
// not validate the bytes it only skips (a malformed number deep in a message goes upstream
// as sent, and the provider answers for it).
std::optional<body_facts> scan_chat_body(std::string_view body);

// The byte length of a JSON string's value from its raw text between the quotes (escapes
// decoded, \u as UTF-8), or nullopt for an invalid escape or a lone surrogate.
std::optional<std::size_t> decoded_size(std::string_view raw);

} // namespace michi::pipeline
