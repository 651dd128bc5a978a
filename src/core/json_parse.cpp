#include "michi/core/json_parse.hpp"

#include "michi/core/safe_text.hpp"

#include <atomic>
#include <utility>
#include <vector>

namespace michi::json_parse {
namespace {

using json = nlohmann::json;

std::atomic<std::size_t> process_max_depth{default_max_depth};

// nlohmann's SAX events built into a json value as its own DOM parser does (a later
// duplicate key replaces the earlier one), refusing an array or object that opens deeper
// than the limit: returning false there ends the parse at once.
class bounded_builder {
public:
    bounded_builder(json& root, std::size_t max_depth) : root_(root), max_depth_(max_depth) {
        open_.reserve(16);
    }

    bool null() { return put(nullptr); }
    bool boolean(bool v) { return put(v); }
    bool number_integer(json::number_integer_t v) { return put(v); }
    bool number_unsigned(json::number_unsigned_t v) { return put(v); }
    bool number_float(json::number_float_t v, const json::string_t&) { return put(v); }
    bool string(json::string_t& v) { return put(std::move(v)); }
    bool binary(json::binary_t& v) { return put(json::binary(std::move(v))); }

    bool start_object(std::size_t) { return open(json::value_t::object); }
    bool key(json::string_t& k) {
        member_ = &(*open_.back())[std::move(k)];
        return true;
    }
    bool end_object() {
        open_.pop_back();
        return true;
    }
    bool start_array(std::size_t) { return open(json::value_t::array); }
    bool end_array() {
        open_.pop_back();
        return true;
    }

    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
        syntax_message_ = e.what();
        return false;
    }

    bool too_deep() const { return too_deep_; }
    std::string& syntax_message() { return syntax_message_; }

private:
    // Places a finished value where the document is: the root, the open array's next
    // element or the member whose key came last. Returns where it went.
    template <class V>
    json* place(V&& v) {
        if (open_.empty()) {
            root_ = json(std::forward<V>(v));
            return &root_;
        }
        json& parent = *open_.back();
        if (parent.is_array()) {
            parent.emplace_back(std::forward<V>(v));
            return &parent.back();
        }
        *member_ = json(std::forward<V>(v));
        return member_;
    }

    template <class V>
    bool put(V&& v) {
        place(std::forward<V>(v));
        return true;
    }

    bool open(json::value_t type) {
        if (open_.size() >= max_depth_) {
            too_deep_ = true;
            return false;
        }
        open_.push_back(place(type));
        return true;
    }

    json& root_;
    std::size_t max_depth_;
    std::vector<json*> open_; // the arrays and objects not closed yet, outermost first
    json* member_ = nullptr;  // the object member the next value fills
    bool too_deep_ = false;
    std::string syntax_message_;
};

} // namespace

std::size_t max_depth() noexcept { return process_max_depth.load(std::memory_order_relaxed); }

void set_max_depth(std::size_t depth) noexcept {
    process_max_depth.store(depth, std::memory_order_relaxed);
}

std::string too_deep_message(std::size_t max_depth) {
    return "nested deeper than the limit of " + std::to_string(max_depth) + " levels";
}

result parse(std::string_view text, std::size_t max_depth) {
    result out;
    bounded_builder builder(out.value, max_depth);
    bool ok = false;
    try {
        ok = json::sax_parse(text.data(), text.data() + text.size(), &builder);
    } catch (const nlohmann::json::exception& e) {
        // (The SAX parser reports its errors through parse_error; kept as a safety net.)
        builder.syntax_message() = e.what();
    }
    if (ok) {
        return out;
    }
    out.value = json(json::value_t::discarded);
    if (builder.too_deep()) {
        out.why = failure::too_deep;
        out.message = too_deep_message(max_depth);
    } else {
        out.why = failure::syntax;
        // (The parser quotes the token it stopped at, which a client wrote and may be long.)
        out.message = safe_text::printable(builder.syntax_message(), 300);
        if (out.message.empty()) {
            out.message = "invalid JSON";
        }
    }
    return out;
}

nlohmann::json parse_value(std::string_view text, std::size_t max_depth) {
    return parse(text, max_depth).value;
}

} // namespace michi::json_parse
