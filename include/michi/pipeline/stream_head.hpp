#pragma once
// A stream's response head written as text, as a whole answer's is: its status line, the SSE
// type, no caching, Connection: close when the connection ends with it, the chunked framing,
// and the served answer's fields (answer.hpp); the same bytes Beast's head (stream_head) and
// write_stream make, without Beast's field list.

#include "michi/pipeline/request_context.hpp"

#include <string>

namespace michi::pipeline {

// The head into out (emptied first), its blank line included.
void stream_head_text(std::string& out, const request_context& ctx, unsigned status);

} // namespace michi::pipeline
