#include "michi/downstream/reply.hpp"

namespace michi::downstream {

http::response<http::string_body> json_response(const call& c, unsigned status, std::string body) {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
    res.prepare_payload();
    res.keep_alive(c.keep_alive);
    return res;
}

awaitable<error_code> write_reply(client_io& io, call& c, http::response<http::string_body>& res,
                                  std::string_view fields) {
    c.log.status = res.result_int();
    auto [ec, n] = co_await io.write_response(res, fields);
    co_return ec;
}

awaitable<error_code> write_error(client_io& io, call& c, const gateway_error& err, dialect d,
                                  std::string_view fields) {
    const auto body = d == dialect::anthropic ? err.anthropic_body() : err.openai_body();
    auto res = json_response(c, err.status,
                             body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    c.log.error_code = err.code;
    co_return co_await write_reply(io, c, res, fields);
}

} // namespace michi::downstream
