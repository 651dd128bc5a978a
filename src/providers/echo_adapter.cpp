// The built-in echo provider as an adapter: an OpenAI-type provider answered in-process. A
// stream is made piece by piece as the relay asks for it (behind the client's backpressure),
// never whole: its size is the prompt's.

#include "michi/providers/echo.hpp"
#include "michi/providers/request_head.hpp"
#include "michi/stream/body_source.hpp"
#include "openai_detail.hpp"

#include <ctime>

namespace michi::providers::openai {
namespace {

std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Content pieces a stream is cut into at most: one word a piece for an ordinary reply,
// longer pieces for a very long one (the stream's size stays about the reply's).
constexpr std::size_t max_pieces = 4096;
// What one next() makes at most before it hands the piece on.
constexpr std::size_t piece_bytes = 16 * 1024;
// The model an answer names, at most: a stream names it in every piece, so a client's long
// model name would otherwise multiply its request's size by the pieces (up to 4096 times).
constexpr std::size_t max_named_model_bytes = 256;

// The model name an answer carries: the client's, cut at a character's start past the bound.
std::string_view named_model(std::string_view model) noexcept {
    if (model.size() <= max_named_model_bytes) {
        return model;
    }
    std::size_t n = max_named_model_bytes;
    while (n > 0 && (static_cast<unsigned char>(model[n]) & 0xC0) == 0x80) {
        --n; // (a UTF-8 continuation byte: the cut goes before its character)
    }
    return model.substr(0, n);
}

// The SSE body of an echo stream, as an OpenAI-type upstream sends it (with the usage
// chunk, which the relay drops unless the client asked for it).
class echo_stream final : public stream::body_source {
public:
    echo_stream(echo::reply r, std::string_view model, std::string_view id, std::int64_t created)
        : reply_(std::move(r)) {
        // Every chunk's JSON up to its "choices" value's start, and what follows it: the keys
        // in the order nlohmann writes them (sorted), as before.
        head_ = "data: {\"choices\":[";
        tail_ = "],\"created\":" + std::to_string(created) + ",\"id\":";
        append_json_string(tail_, id);
        tail_ += ",\"model\":";
        append_json_string(tail_, model);
        tail_ += ",\"object\":\"chat.completion.chunk\"}\n\n";
        min_piece_ = reply_.text.size() / max_pieces;
    }

    awaitable<std::pair<error_code, std::string_view>> next(const std::function<void()>*) override {
        out_.clear();
        while (out_.size() < piece_bytes && step_ != step::done) {
            make_some();
        }
        co_return std::pair{error_code{}, std::string_view(out_)};
    }
    bool done() const noexcept override { return step_ == step::done; }
    void abort() noexcept override { step_ = step::done; }

private:
    enum class step { role, content, stop, usage, end, done };

    void chunk(std::string_view choice) { out_.append(head_).append(choice).append(tail_); }

    void make_some() {
        switch (step_) {
        case step::role:
            chunk(R"({"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0})");
            step_ = step::content;
            break;
        case step::content: {
            // One word a piece (each keeping its leading space, so the pieces join back
            // exactly), at least min_piece_ bytes.
            const auto& text = reply_.text;
            if (at_ >= text.size()) {
                step_ = step::stop;
                break;
            }
            std::size_t end = at_;
            do {
                end = text.find(' ', end + 1);
                if (end == std::string::npos) {
                    end = text.size();
                }
            } while (end < text.size() && end - at_ < min_piece_);
            std::string choice = R"({"delta":{"content":)";
            append_json_string(choice, std::string_view(text).substr(at_, end - at_));
            choice += R"(},"finish_reason":null,"index":0})";
            chunk(choice);
            at_ = end;
            break;
        }
        case step::stop:
            chunk(R"({"delta":{},"finish_reason":"stop","index":0})");
            step_ = step::usage;
            break;
        case step::usage: {
            // {"choices":[],"created":…,"id":…,"model":…,"object":…,"usage":{…}}
            std::string usage = tail_.substr(0, tail_.size() - 3); // without "}\n\n"
            usage += ",\"usage\":";
            usage += dump({{"prompt_tokens", reply_.prompt_tokens},
                           {"completion_tokens", reply_.completion_tokens},
                           {"total_tokens", reply_.prompt_tokens + reply_.completion_tokens}});
            usage += "}\n\n";
            out_.append(head_).append(usage);
            step_ = step::end;
            break;
        }
        case step::end:
            out_.append("data: [DONE]\n\n");
            step_ = step::done;
            break;
        case step::done: break;
        }
    }

    echo::reply reply_;
    std::string head_;
    std::string tail_;
    std::size_t min_piece_ = 0;
    std::size_t at_ = 0;
    step step_ = step::role;
    std::string out_;
};

class echo_type final : public detail::openai_type {
public:
    config::provider_type type() const noexcept override { return config::provider_type::echo; }
    bool local() const noexcept override { return true; }
    bool needs_parsed_body(const binding&, const request_view&) const override { return true; }
    void prepare(binding&) const override {}
    result<void> build(const binding&, const config::model_config&, const request_view&,
                       outgoing_request&) const override {
        return errors::internal("The echo provider is answered in-process.");
    }

    std::unique_ptr<local_answer> answer_locally(const config::model_config& model,
                                                 const request_view& r,
                                                 const std::string& id) const override {
        auto out = std::make_unique<local_answer>();
        const auto created = static_cast<std::int64_t>(std::time(nullptr));
        const auto& body = *r.parsed;
        if (r.api == api_kind::embeddings) {
            auto list = echo::embeddings(body, std::string(named_model(model.model)));
            if (wants_base64(body)) {
                encode_base64(list);
            }
            out->whole = dump(list);
            return out;
        }
        auto reply = echo::make_reply(body);
        if (!r.stream) {
            out->whole =
                dump(echo::completion(reply, std::string(named_model(model.model)), id, created));
            return out;
        }
        out->stream =
            std::make_unique<echo_stream>(std::move(reply), named_model(model.model), id, created);
        return out;
    }
};

const echo_type echo_instance;

} // namespace

const adapter& echo_adapter() noexcept { return echo_instance; }

} // namespace michi::providers::openai
