#include "michi/config/builtin_models.hpp"

#include <array>

namespace michi::config {
namespace {

// Providers' public list prices (standard tier, USD per 1M tokens).
constexpr std::array<builtin_model, 31> table{{
    // OpenAI
    {"gpt-4o", "gpt-4o", 2.50, 10.00, 128000, true, true},
    {"gpt-4o-mini", "gpt-4o-mini", 0.15, 0.60, 128000, true, true},
    {"gpt-4.1", "gpt-4.1", 2.00, 8.00, 1047576, true, true},
    {"gpt-4.1-mini", "gpt-4.1-mini", 0.40, 1.60, 1047576, true, true},
    {"gpt-4.1-nano", "gpt-4.1-nano", 0.10, 0.40, 1047576, true, true},
    {"o3", "o3", 2.00, 8.00, 200000, true, true},
    {"o3-mini", "o3-mini", 1.10, 4.40, 200000, true, false},
    {"o4-mini", "o4-mini", 1.10, 4.40, 200000, true, true},
    {"gpt-3.5-turbo", "gpt-3.5-turbo", 0.50, 1.50, 16385, true, false},
    {"text-embedding-3-small", "text-embedding-3-small", 0.02, 0.0, 8191, false, false},
    {"text-embedding-3-large", "text-embedding-3-large", 0.13, 0.0, 8191, false, false},
    // Anthropic
    {"claude-3-5-sonnet", "claude-3-5-sonnet-20241022", 3.00, 15.00, 200000, true, true},
    {"claude-3-5-haiku", "claude-3-5-haiku-20241022", 0.80, 4.00, 200000, true, true},
    {"claude-3-7-sonnet", "claude-3-7-sonnet-20250219", 3.00, 15.00, 200000, true, true},
    {"claude-sonnet-4", "claude-sonnet-4-20250514", 3.00, 15.00, 200000, true, true},
    {"claude-opus-4", "claude-opus-4-20250514", 15.00, 75.00, 200000, true, true},
    {"claude-3-haiku", "claude-3-haiku-20240307", 0.25, 1.25, 200000, true, true},
    // Google
    {"gemini-2.0-flash", "gemini-2.0-flash", 0.10, 0.40, 1048576, true, true},
    {"gemini-2.5-flash", "gemini-2.5-flash", 0.30, 2.50, 1048576, true, true},
    {"gemini-2.5-pro", "gemini-2.5-pro", 1.25, 10.00, 1048576, true, true},
    {"gemini-1.5-flash", "gemini-1.5-flash", 0.075, 0.30, 1048576, true, true},
    {"gemini-1.5-pro", "gemini-1.5-pro", 1.25, 5.00, 2097152, true, true},
    // DeepSeek
    {"deepseek-v3", "deepseek-chat", 0.27, 1.10, 65536, true, false},
    {"deepseek-chat", "deepseek-chat", 0.27, 1.10, 65536, true, false},
    {"deepseek-r1", "deepseek-reasoner", 0.55, 2.19, 65536, false, false},
    {"deepseek-reasoner", "deepseek-reasoner", 0.55, 2.19, 65536, false, false},
    // Mistral
    {"mistral-large-latest", "mistral-large-latest", 2.00, 6.00, 131072, true, false},
    {"mistral-small-latest", "mistral-small-latest", 0.10, 0.30, 32768, true, false},
    // Groq
    {"llama-3.3-70b-versatile", "llama-3.3-70b-versatile", 0.59, 0.79, 131072, true, false},
    {"llama-3.1-8b-instant", "llama-3.1-8b-instant", 0.05, 0.08, 131072, true, false},
    {"mixtral-8x7b-32768", "mixtral-8x7b-32768", 0.24, 0.24, 32768, true, false},
}};

} // namespace

std::span<const builtin_model> builtin_models() { return table; }

const builtin_model* find_builtin_model(std::string_view name) {
    for (const auto& m : table) {
        if (m.name == name) {
            return &m;
        }
    }
    return nullptr;
}

} // namespace michi::config
