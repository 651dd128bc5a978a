#include "michi/pipeline/stream_head.hpp"

#include "michi/core/http_wire.hpp"
#include "michi/pipeline/answer.hpp"

namespace michi::pipeline {

void stream_head_text(std::string& out, const request_context& ctx, unsigned status) {
    out.clear();
    out.reserve(640);
    wire::append_status_line(out, status);
    out.append("Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n");
    if (!ctx.keep_alive) {
        out.append("Connection: close\r\n");
    }
    out.append("Transfer-Encoding: chunked\r\n");
    append_michi_fields(out, ctx);
    out.append(wire::crlf);
}

} // namespace michi::pipeline
