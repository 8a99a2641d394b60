// Segment names: the one rule (Segment::valid_name, docs/segments.md), applied by every path
// that takes a name — create, open, remove, a named object's factories.
#include <string>
#include <vector>

#include "counters_segment.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/segment.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using test::error_of;
using test::NameGuard;

std::vector<std::string> refused_names() {
    return {"",
            std::string(max_name_length + 1, 'x'),
            "/x",
            "//x",
            "a/b",
            "x/",
            "../x",
            "a/../b",
            ".",
            "..",
            ".x",
            "x.",
            "a..b",
            "a...b",
            "sp ace",
            "tab\tx",
            "new\nline",
            std::string("nul\0x", 5),
            "colon:x",
            "star*",
            "back\\slash",
            "caf\xc3\xa9",
            "\xff"};
}

TEST(SegmentNames, EveryRefusedFormIsInvalidName) {
    for (const std::string& bad : refused_names()) {
        SCOPED_TRACE(testing::PrintToString(bad));
        EXPECT_FALSE(Segment::valid_name(bad));
        EXPECT_EQ(error_of([&] { Segment::validate_name(bad); }), errc::invalid_name);
    }
}

TEST(SegmentNames, CreateOpenRemoveAndNamedObjectsRefuseThem) {
    for (const std::string& bad : refused_names()) {
        SCOPED_TRACE(testing::PrintToString(bad));
        EXPECT_EQ(error_of([&] { test::create_counters(bad); }), errc::invalid_name);
        EXPECT_EQ(error_of([&] { Segment::open(bad, test::counters_expectation()); }),
                  errc::invalid_name);
        EXPECT_EQ(error_of([&] { Segment::remove(bad); }), errc::invalid_name);
        EXPECT_EQ(error_of([&] { Lock::create(bad); }), errc::invalid_name);
        EXPECT_EQ(error_of([&] { Lock::open(bad); }), errc::invalid_name);
        EXPECT_EQ(error_of([&] { Lock::open_or_create(bad); }), errc::invalid_name);
    }
}

// "/x" is not "x": a leading slash used to be dropped, so it opened another object than named.
TEST(SegmentNames, LeadingSlashIsNotDropped) {
    NameGuard name(test::unique_name("names"));
    Segment created = test::create_counters(*name);
    EXPECT_EQ(error_of([&] { Segment::open("/" + *name, test::counters_expectation()); }),
              errc::invalid_name);
    EXPECT_EQ(error_of([&] { Segment::remove("/" + *name); }), errc::invalid_name);
    EXPECT_NO_THROW(Segment::open(*name, test::counters_expectation()));
}

TEST(SegmentNames, AcceptedFormsCreateOpenAndRemove) {
    const std::string stem = test::unique_name("names");
    for (const std::string& suffix :
         {std::string(), std::string(".v2"), std::string(".a.b_c-D9"), std::string("-_")}) {
        const std::string good = stem + suffix;
        SCOPED_TRACE(good);
        EXPECT_TRUE(Segment::valid_name(good));
        EXPECT_EQ(Segment::validate_name(good), good);
        NameGuard guard(good);
        Segment created = test::create_counters(good);
        Segment opened = Segment::open(good, test::counters_expectation());
        EXPECT_EQ(opened.name(), good);
        EXPECT_EQ(test::counters(opened)[0].load(), 42u);
        EXPECT_TRUE(Segment::remove(good));
    }
    for (const std::string& good : {std::string("a"), std::string("0"), std::string("_"),
                                    std::string("-"), std::string(max_name_length, 'z')}) {
        EXPECT_TRUE(Segment::valid_name(good)) << good;
    }
    // The longest name is usable, not only valid.
    const std::string longest = stem + std::string(max_name_length - stem.size(), 'L');
    NameGuard guard(longest);
    EXPECT_NO_THROW(test::create_counters(longest));
}

TEST(SegmentNames, TheMessageStatesTheRuleAndEscapesControlCharacters) {
    try {
        Segment::validate_name("bad\nname");
        FAIL() << "accepted";
    } catch (const Error& error) {
        const std::string what = error.what();
        EXPECT_NE(what.find("bad\\x0aname"), std::string::npos) << what;
        EXPECT_EQ(what.find('\n'), std::string::npos) << what;
        EXPECT_NE(what.find("[A-Za-z0-9_-]"), std::string::npos) << what;
    }
}

}  // namespace
}  // namespace shuttle
