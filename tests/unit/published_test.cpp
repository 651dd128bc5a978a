#include "michi/core/published.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace michi {
namespace {

TEST(PublishedTest, AReaderKeepsItsCopyUntilANewValueIsPublished) {
    published<std::string> p(std::make_shared<const std::string>("one"));
    published<std::string>::reader r;
    const auto first = r.get(p);
    EXPECT_EQ(*first, "one");
    EXPECT_EQ(r.get(p).get(), first.get()); // the same object, not a new copy
    p.set(std::make_shared<const std::string>("two"));
    EXPECT_EQ(*r.get(p), "two");
    EXPECT_EQ(*first, "one"); // a holder of the old value still has it
    EXPECT_EQ(*p.get(), "two");
}

TEST(PublishedTest, AReaderNeverTakesANewInstanceAtAnOldAddressForTheOneItCached) {
    published<std::string>::reader r;
    std::optional<published<std::string>> p;
    p.emplace(std::make_shared<const std::string>("first"));
    EXPECT_EQ(*r.get(*p), "first");
    p.reset();
    p.emplace(std::make_shared<const std::string>("second")); // same storage, same address
    EXPECT_EQ(*r.get(*p), "second");
}

} // namespace
} // namespace michi
