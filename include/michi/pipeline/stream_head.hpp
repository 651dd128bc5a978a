#pragma once
// A stream's response head written as text, as a whole answer's is: its status line, the SSE
// type, no caching, Connection: close when the connection ends with it, the chunked framing,
// and the served answer's fields (answer.hpp). Both a relayed stream and a kept one replayed
// from the cache go out with it.

#include "michi/pipeline/request_context.hpp"

#include <string>

namespace michi::pipeline {

// The head into out (emptied first), its blank line included.
void stream_head_text(std::string& out, const request_context& ctx, unsigned status);

} // namespace michi::pipeline
