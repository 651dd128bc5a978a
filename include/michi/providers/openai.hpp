#pragma once
// OpenAI-type providers (OpenAI and every OpenAI-compatible service, Azure OpenAI) and the
// built-in echo provider, which answers as an OpenAI-type provider would. The client's
// chat and embeddings requests go to them as they were sent, the model swapped.

#include "michi/providers/adapter.hpp"

#include <string_view>

namespace michi::providers::openai {

// Characters of the `"content":"…"` strings of a chat.completion (chunk), by a cheap scan
// rather than a JSON parse (the relay's hot path): the output estimate when no usage comes.
std::size_t content_chars(std::string_view text) noexcept;

// Usage from the raw text of an OpenAI "usage" member, without building a DOM; false when
// it is not an object.
bool read_usage(std::string_view usage, usage_info& u) noexcept;

// OpenAI chunks as the pivot form for another API's client: passed on, [DONE] ends the
// stream, the usage chunk noted (and dropped unless include_usage).
std::unique_ptr<chunk_translator> make_pivot_stream(bool include_usage);

// Whether an embeddings request asks for base64 vectors (encoding_format: "base64").
bool wants_base64(const nlohmann::json& request) noexcept;
// An OpenAI embeddings list's float vectors as base64 of their little-endian float32 bytes,
// as OpenAI answers encoding_format: "base64".
void encode_base64(nlohmann::json& list);

const adapter& openai_adapter() noexcept;
const adapter& azure_adapter() noexcept;
const adapter& echo_adapter() noexcept;

} // namespace michi::providers::openai
