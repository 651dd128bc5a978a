#pragma once
// What admission reads of an Anthropic Messages or OpenAI Responses body that goes to a
// provider of the same API as it was sent: the model (and where its value lies, to swap it),
// stream, the output limit, whether it offers tools or carries images, and a prompt estimate,
// by one walk over its bytes and no parse. nullopt when the full parse has to decide (text
// the scan cannot follow, a duplicated or escaped key where it reads, nesting deeper than
// max_depth, no prompt member); a model written with escapes is decoded.

#include "michi/core/api.hpp"
#include "michi/pipeline/body_scan.hpp"

#include <optional>
#include <string_view>

namespace michi::pipeline {

std::optional<body_facts> scan_passthrough_body(std::string_view body, api_kind api,
                                                std::size_t max_depth);

} // namespace michi::pipeline
