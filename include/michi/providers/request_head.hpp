#pragma once
// The head of an upstream request, written out once as text (no Beast field set): the start
// line, Host, the adapter's own fields, Content-Type and User-Agent, the provider's configured
// headers, then Content-Length and the blank line.

#include "michi/config/config.hpp"
#include "michi/upstream/endpoint.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace michi::providers {

// The fields of one upstream request, set by name (a later set of the same name, in any
// case, replaces the earlier). Host comes first, the endpoint's.
class field_list {
public:
    explicit field_list(const upstream::endpoint& ep);
    void set(std::string_view name, std::string value);
    const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

// "POST target HTTP/1.1", the fields of `own`, Content-Type and User-Agent, the provider's
// configured headers (which override any of these but the framing): the head up to its
// Content-Length, appended to out.
void head_prefix(std::string& out, const config::provider_config& p, std::string_view target,
                 field_list&& own);
// Ends a head: Content-Length and the blank line.
void finish_head(std::string& head, std::size_t body_size);
// Appends the JSON string literal of s (escaped only when it needs it).
void append_json_string(std::string& out, std::string_view s);

// Into out (emptied first): the client's body with only the model's value replaced (its
// bytes at [model_begin, model_end); 0, 0: found here) and `first_member` ("name":value,)
// put in first when not empty: no copy and re-serialisation of a parsed body. False, out
// left empty, when the model's bytes cannot be told (a duplicated or escaped key, where the
// upstream might read a different "model" than admission did).
bool splice_model(std::string_view raw, std::size_t model_begin, std::size_t model_end,
                  std::string_view upstream_model, std::string_view first_member, std::string& out);

} // namespace michi::providers
