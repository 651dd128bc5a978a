#include "michi/providers/openai.hpp"
#include "michi/core/json_parse.hpp"

#include "michi/core/json_scan.hpp"
#include "michi/providers/request_head.hpp"
#include "michi/providers/usage.hpp"
#include "openai_detail.hpp"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace michi::providers::openai {
namespace detail {
namespace {

std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The usage of a Responses API response object's text.
bool read_responses_body_usage(std::string_view response, usage_info& u) {
    const auto usage = json_scan::find_unique_near_end(response, "usage");
    if (!usage || usage->empty() || usage->front() != '{') {
        return false;
    }
    if (const auto read = read_responses_usage(*usage)) {
        u = usage_info::from(*read);
        return true;
    }
    return false;
}

bool is_usage_only_chunk(std::string_view data) {
    return json_scan::find_text(data, "\"usage\":{") != std::string_view::npos &&
           json_scan::find_text(data, "\"choices\":[]") != std::string_view::npos;
}

constexpr std::string_view content_key = "\"content\":\"";
constexpr std::string_view usage_key = "\"usage\"";

// The characters of the JSON string whose text starts at text[pos] (just past its opening
// quote), added to chars; returns where it ends (its closing quote, or the text's end). An
// escape counts as one character, a multi-byte UTF-8 one once. (16 bytes at a time up to
// its closing quote or a backslash, then byte by byte.)
std::size_t count_string(std::string_view text, std::size_t pos, std::size_t& chars) noexcept {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i lead_min = _mm_set1_epi8(-64); // 0xC0: below it (signed), 0x80-0xBF follow
    while (pos + 16 <= text.size()) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + pos));
        const auto stop = static_cast<unsigned>(_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash))));
        auto follow = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmplt_epi8(x, lead_min)));
        const unsigned n = stop == 0 ? 16 : static_cast<unsigned>(__builtin_ctz(stop));
        follow &= (1u << n) - 1;
        chars += n;
        for (; follow != 0; follow &= follow - 1) {
            --chars; // a UTF-8 continuation byte
        }
        pos += n;
        if (stop != 0) {
            if (text[pos] == '"') {
                return pos;
            }
            break; // a backslash: the escapes byte by byte
        }
    }
#endif
    while (pos < text.size() && text[pos] != '"') {
        if (text[pos] == '\\') {
            ++pos; // an escape counts as one character
        }
        // Count UTF-8 lead bytes only, so a multi-byte character counts once.
        if (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) != 0x80) {
            ++chars;
        }
        ++pos;
    }
    return pos;
}

// One pass over text for both `"content":"` (each counted as content_chars counts it: the
// first place, then the first from its string's closing quote on, ...) and `"usage"`
// (anywhere, strings included: whether a usage chunk's reading is worth trying). Both end
// with a quote, which is looked for 16 places at a time with the key's first letter at its
// distance before it ('c' 9 bytes, 'u' 5).
void scan_chat_text(std::string_view text, std::size_t& chars, bool& usage_named) noexcept {
    constexpr std::size_t cn = content_key.size();
    constexpr std::size_t un = usage_key.size();
    const char* const s = text.data();
    const std::size_t len = text.size();
    std::size_t resume = 0; // where the next `"content":"` may start
    // q: a quote with 'c' or 'u' at its distance before it, in order.
    const auto at = [&](std::size_t q) {
        if (q + 1 >= cn + resume && std::memcmp(s + q + 1 - cn, content_key.data(), cn) == 0) {
            resume = count_string(text, q + 1, chars);
        } else if (q + 1 >= un && std::memcmp(s + q + 1 - un, usage_key.data(), un) == 0) {
            usage_named = true;
        }
    };
    const auto place = [&](std::size_t q) {
        if (s[q] == '"' &&
            ((q >= cn - 2 && s[q - (cn - 2)] == 'c') || (q >= un - 2 && s[q - (un - 2)] == 'u'))) {
            at(q);
        }
    };
    std::size_t q = un - 1; // (no key ends before)
#ifdef __SSE2__
    constexpr std::size_t first = cn - 2; // the first block's first place: 'c' in reach
    if (len >= first + 16) {
        for (; q < first; ++q) {
            place(q);
        }
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i c = _mm_set1_epi8('c');
        const __m128i u = _mm_set1_epi8('u');
        const auto block = [&](std::size_t j, unsigned skip) {
            const auto load = [&](std::size_t from) {
                return _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + from));
            };
            const __m128i keys = _mm_or_si128(_mm_cmpeq_epi8(load(j - (cn - 2)), c),
                                              _mm_cmpeq_epi8(load(j - (un - 2)), u));
            auto mask = static_cast<unsigned>(
                _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(load(j), quote), keys)));
            for (mask &= ~skip; mask != 0; mask &= mask - 1) {
                at(j + static_cast<std::size_t>(__builtin_ctz(mask)));
            }
        };
        for (; q + 16 <= len; q += 16) {
            block(q, 0);
        }
        if (q < len) { // the last places by one more block ending at the text's end
            block(len - 16, (1u << (16 - (len - q))) - 1);
        }
        return;
    }
#endif
    for (; q < len; ++q) {
        place(q);
    }
}

// The chat usage chunk's reading, as find_unique(data, "usage"), read_usage and
// is_usage_only_chunk would make it, in one walk over its members: where the walk saw
// `"usage":{` or `"choices":[]` written whole, no search for them.
bool read_chat_usage_event(std::string_view data, usage_info& u) {
    std::optional<std::string_view> usage;
    bool ambiguous = false;
    bool usage_brace = false; // `"usage":{` written at the member found
    bool no_choices = false;  // `"choices":[]` written at a member
    const bool escapes = std::memchr(data.data(), '\\', data.size()) != nullptr;
    const auto written = [&](std::string_view key_raw, std::string_view as) {
        const auto at = static_cast<std::size_t>(key_raw.data() - data.data()) - 1;
        return data.size() - at >= as.size() &&
               std::memcmp(data.data() + at, as.data(), as.size()) == 0;
    };
    const bool ok = json_scan::for_each_member(data, [&](const json_scan::member& m) {
        if (escapes && m.key_raw.find('\\') != std::string_view::npos) {
            ambiguous = true;
        } else if (json_scan::key_is(m.key_raw, "usage")) {
            ambiguous = ambiguous || usage.has_value();
            usage = data.substr(m.value_begin, m.value_end - m.value_begin);
            usage_brace = written(m.key_raw, "\"usage\":{");
        } else if (json_scan::key_is(m.key_raw, "choices") && !no_choices) {
            no_choices = written(m.key_raw, "\"choices\":[]");
        }
    });
    if (!ok || ambiguous || !usage || !read_usage(*usage, u)) {
        return false;
    }
    return (usage_brace || json_scan::find_text(data, "\"usage\":{") != std::string_view::npos) &&
           (no_choices || json_scan::find_text(data, "\"choices\":[]") != std::string_view::npos);
}

// OpenAI-type upstream events as the pivot form: passes chunks on, ends at [DONE], notes
// usage.
class pivot_stream final : public chunk_translator {
public:
    explicit pivot_stream(bool keep_usage_chunk) : keep_usage_(keep_usage_chunk) {}

    bool on_event(const stream::sse_event& ev, std::vector<std::string>& out) override {
        if (ev.data == "[DONE]") {
            finished_ = true;
            return true;
        }
        if (json_scan::find_text(ev.data, "\"usage\"") != std::string::npos) {
            const auto j = json_parse::parse_value(ev.data);
            const auto usage = j.is_object() ? j.find("usage") : j.end();
            if (j.is_object() && usage != j.end()) {
                if (const auto u = read_openai_chat_usage(*usage)) {
                    usage_ = usage_info::from(*u);
                    if (!keep_usage_ && is_usage_only_chunk(ev.data)) {
                        return true;
                    }
                }
            }
        }
        if (ev.data.find("\"error\"") != std::string::npos) {
            const auto j = json_parse::parse_value(ev.data);
            if (j.is_object() && j.contains("error")) {
                error_ = dump(j["error"]);
                return false;
            }
        }
        out.push_back(ev.data);
        return true;
    }
    bool finished() const override { return finished_; }
    const usage_info& usage() const override { return usage_; }
    std::string error_message() const override { return error_; }

private:
    bool keep_usage_;
    bool finished_ = false;
    usage_info usage_;
    std::string error_;
};

const openai_type openai_instance;

} // namespace

std::string_view operation(api_kind api) noexcept {
    switch (api) {
    case api_kind::embeddings: return "embeddings";
    case api_kind::responses: return "responses";
    default: return "chat/completions";
    }
}

std::size_t head_index(api_kind api) noexcept {
    switch (api) {
    case api_kind::embeddings: return 1;
    case api_kind::responses: return 2;
    default: return 0;
    }
}

bool openai_type::needs_parsed_body(const binding& b, const request_view& r) const {
    // Another API's request goes in pivot form; stream options the client set are merged
    // (Chat Completions; a Responses stream always ends with its usage).
    return !passthrough(b, r.api) ||
           (r.api == api_kind::chat && r.stream && !r.wants_usage && r.has_stream_options);
}

void openai_type::prepare(binding& b) const {
    // "POST <base>/<op>", Host, Authorization, Content-Type, User-Agent and the configured
    // headers: the same for every request to that operation, built once per snapshot.
    // One set of heads per provider key.
    const auto& p = *b.config;
    b.heads.assign(std::max<std::size_t>(1, p.api_keys.size()), {});
    for (std::size_t key = 0; key < b.heads.size(); ++key) {
        for (const api_kind api : {api_kind::chat, api_kind::embeddings, api_kind::responses}) {
            std::string target = b.endpoint->base_path;
            target.append("/").append(operation(api));
            field_list fields(*b.endpoint);
            if (!b.api_key(key).empty()) {
                fields.set("Authorization", "Bearer " + b.api_key(key));
            }
            auto& head = b.heads[key][head_index(api)];
            head_prefix(head, p, target, std::move(fields));
        }
    }
}

void openai_type::rewrite_body(const request_view& r, const std::string* upstream_model,
                               outgoing_request& out) {
    nlohmann::json body = r.parsed != nullptr ? *r.parsed : nlohmann::json::object();
    if (upstream_model != nullptr) {
        body["model"] = *upstream_model;
    } else {
        body.erase("model");
    }
    if (r.stream) {
        // Ask for the usage chunk so streams are charged exactly; the relay drops it again
        // when the client did not ask for it.
        body["stream_options"]["include_usage"] = true;
    }
    out.body = dump(body);
}

result<void> openai_type::build(const binding& b, const config::model_config& model,
                                const request_view& r, outgoing_request& out) const {
    // The client's own API when this provider speaks it, else Chat Completions (pivot form).
    const bool same = passthrough(b, r.api);
    const auto& heads = b.heads[std::min(r.key_index, b.heads.size() - 1)];
    const std::string& prefix = heads[head_index(same ? r.api : api_kind::chat)];
    // Room for the Content-Length line and the blank line too: one allocation.
    out.head.reserve(prefix.size() + 40);
    out.head.append(prefix);
    // A chat stream that does not ask for usage yet gets it asked for first in the body.
    constexpr std::string_view usage_option = R"("stream_options":{"include_usage":true},)";
    const bool add_usage = r.api == api_kind::chat && r.stream && !r.wants_usage;
    const bool spliced = same && !(add_usage && r.has_stream_options) &&
                         splice_model(r.raw_body, r.model_begin, r.model_end, model.upstream,
                                      add_usage ? usage_option : std::string_view{}, out.body);
    if (!spliced) {
        rewrite_body(r, &model.upstream, out);
    }
    finish_head(out.head, out.body.size());
    return ok();
}

bool openai_type::usage_of_body(api_kind api, std::string_view body, usage_info& u) const {
    if (api == api_kind::responses) {
        return read_responses_body_usage(body, u);
    }
    const auto usage = json_scan::find_unique_near_end(body, "usage");
    return usage && read_usage(*usage, u);
}

bool openai_type::inspect_event(api_kind api, std::string_view data, usage_info& u) const {
    if (json_scan::find_text(data, "\"usage\"") == std::string_view::npos) {
        return false;
    }
    if (api == api_kind::responses) {
        // The usage comes with the response object of response.completed (or .incomplete).
        const auto response = json_scan::find_unique(data, "response");
        if (response) {
            read_responses_body_usage(*response, u);
        }
        return false;
    }
    const auto usage = json_scan::find_unique(data, "usage");
    return usage && read_usage(*usage, u) && is_usage_only_chunk(data);
}

bool openai_type::read_event(api_kind api, std::string_view data, usage_info& u,
                             std::size_t& chars) const {
    if (api != api_kind::chat) {
        return adapter::read_event(api, data, u, chars);
    }
    // One pass for the content and whether `"usage"` is written (which only a usage chunk
    // has): most events then take no other look.
    bool named = false;
    scan_chat_text(data, chars, named);
    return named && read_chat_usage_event(data, u);
}

std::optional<nlohmann::json> openai_type::to_pivot(api_kind, const nlohmann::json& body,
                                                    const std::string&, const std::string&,
                                                    usage_info& u) const {
    if (!body.is_object()) {
        return std::nullopt;
    }
    if (const auto it = body.find("usage"); it != body.end()) {
        if (const auto read = read_openai_chat_usage(*it)) {
            u = usage_info::from(*read);
        }
    }
    return body;
}

nlohmann::json openai_type::error_to_pivot(unsigned, std::string_view body) const {
    auto j = json_parse::parse_value(body);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        return j;
    }
    return {{"error", {{"message", std::string(body)}, {"type", "api_error"}}}};
}

std::unique_ptr<chunk_translator> openai_type::stream_to_pivot(std::string, std::string,
                                                               bool include_usage) const {
    return make_pivot_stream(include_usage);
}

} // namespace detail

std::size_t content_chars(std::string_view text) noexcept {
    std::size_t chars = 0;
    bool named = false;
    detail::scan_chat_text(text, chars, named);
    return chars;
}

bool read_usage(std::string_view usage, usage_info& u) noexcept {
    const auto read = read_openai_chat_usage(usage);
    if (read) {
        u = usage_info::from(*read);
    }
    return read.has_value();
}

bool wants_base64(const nlohmann::json& request) noexcept {
    const auto format = request.find("encoding_format");
    return format != request.end() && format->is_string() &&
           format->get_ref<const std::string&>() == "base64";
}

void encode_base64(nlohmann::json& list) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto data = list.find("data");
    if (data == list.end() || !data->is_array()) {
        return;
    }
    for (auto& item : *data) {
        const auto vec = item.is_object() ? item.find("embedding") : item.end();
        if (!item.is_object() || vec == item.end() || !vec->is_array()) {
            continue;
        }
        std::string bytes;
        bytes.reserve(vec->size() * 4);
        for (const auto& x : *vec) {
            const float f = x.is_number() ? x.get<float>() : 0.0f;
            std::uint32_t u = 0;
            std::memcpy(&u, &f, sizeof u);
            for (int k = 0; k < 4; ++k) {
                bytes.push_back(static_cast<char>((u >> (8 * k)) & 0xff));
            }
        }
        std::string out;
        out.reserve((bytes.size() + 2) / 3 * 4);
        for (std::size_t i = 0; i < bytes.size(); i += 3) {
            const auto b0 = static_cast<unsigned char>(bytes[i]);
            const auto b1 = i + 1 < bytes.size() ? static_cast<unsigned char>(bytes[i + 1]) : 0u;
            const auto b2 = i + 2 < bytes.size() ? static_cast<unsigned char>(bytes[i + 2]) : 0u;
            out.push_back(alphabet[b0 >> 2]);
            out.push_back(alphabet[((b0 & 3) << 4) | (b1 >> 4)]);
            out.push_back(i + 1 < bytes.size() ? alphabet[((b1 & 15) << 2) | (b2 >> 6)] : '=');
            out.push_back(i + 2 < bytes.size() ? alphabet[b2 & 63] : '=');
        }
        *vec = std::move(out);
    }
}

std::unique_ptr<chunk_translator> make_pivot_stream(bool include_usage) {
    return std::make_unique<detail::pivot_stream>(include_usage);
}

const adapter& openai_adapter() noexcept { return detail::openai_instance; }

} // namespace michi::providers::openai
