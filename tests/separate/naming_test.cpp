// Output naming (demucs' --filename template, the -o/<model> root,
// --two-stems) and the output plan's collision check.
#include "runtime/separate/naming.h"

#include <gtest/gtest.h>

#include "runtime/error.h"
#include "tests/separate/test_support.h"

namespace stemkit::separate {
namespace {

namespace fs = std::filesystem;

using test::contains;
using test::error_of;

TEST(Naming, TrackNameSplitsAtTheLastDot) {
  auto t = split_track_name("/music/a.b.wav");
  EXPECT_EQ(t.track, "a.b");
  EXPECT_EQ(t.trackext, "wav");
  t = split_track_name("song.FLAC");
  EXPECT_EQ(t.track, "song");
  EXPECT_EQ(t.trackext, "FLAC");
  t = split_track_name("noext");
  EXPECT_EQ(t.track, "noext");
  EXPECT_EQ(t.trackext, "");
}

TEST(Naming, DefaultTemplate) {
  FilenameTemplate t;
  EXPECT_EQ(t.text(), "{track}/{stem}.{ext}");
  EXPECT_EQ(t.render(split_track_name("in/Song One.mp3"), "vocals", "wav"), fs::path("Song One/vocals.wav"));
}

TEST(Naming, AllVariablesAndEscapes) {
  FilenameTemplate t("{track}_{trackext}/{{{stem}}}-{stem}.{ext}");
  EXPECT_EQ(t.render({"song", "flac"}, "bass", "wav"), fs::path("song_flac/{bass}-bass.wav"));
  FilenameTemplate flat("{track}.{stem}.{ext}");
  EXPECT_EQ(flat.render({"song", "mp3"}, "drums", "flac"), fs::path("song.drums.flac"));
  // ".." inside a component is just text.
  EXPECT_EQ(FilenameTemplate("..{stem}").render({"t", "wav"}, "bass", "wav"), fs::path("..bass"));
}

TEST(Naming, BadTemplatesAreRefusedWithTheReason) {
  auto refused = [](const char* text) { return error_of([&] { FilenameTemplate t(text); }); };
  std::string e = refused("{trak}/{stem}.{ext}");
  EXPECT_TRUE(contains(e, "--filename '{trak}/{stem}.{ext}'")) << e;
  EXPECT_TRUE(contains(e, "unknown variable '{trak}'")) << e;
  EXPECT_TRUE(contains(e, "{track}, {trackext}, {stem}, {ext}")) << e;
  EXPECT_TRUE(contains(refused("{stem:>8}.{ext}"), "format spec")) << refused("{stem:>8}.{ext}");
  EXPECT_TRUE(contains(refused("{stem!r}"), "format spec"));
  EXPECT_TRUE(contains(refused("{0}/{stem}"), "unknown variable '{0}'"));
  EXPECT_TRUE(contains(refused("{}/{stem}"), "unknown variable '{}'"));
  EXPECT_TRUE(contains(refused("{track/{stem}"), "unknown variable"));
  EXPECT_TRUE(contains(refused("{stem}.{ext"), "never closed"));
  EXPECT_TRUE(contains(refused("{stem}}"), "single '}'"));
  EXPECT_TRUE(contains(refused("{track}.{ext}"), "no {stem}"));
  EXPECT_TRUE(contains(refused(""), "empty"));
  EXPECT_TRUE(contains(refused("/tmp/{stem}.{ext}"), "absolute"));
  EXPECT_TRUE(contains(refused("{track}/{stem}/"), "ends with '/'"));
  EXPECT_TRUE(contains(refused("{track}//{stem}"), "empty path component"));
  EXPECT_TRUE(contains(refused("../{stem}.{ext}"), "outside the output directory"));
  EXPECT_TRUE(contains(refused("{track}/../../{stem}.{ext}"), "outside the output directory"));
  EXPECT_TRUE(contains(refused("{stem}/.."), "outside the output directory"));
}

TEST(Naming, ValuesThatWouldEscapeAreRefusedAtRender) {
  FilenameTemplate t;
  // demucs' rsplit gives track "" for ".wav" and ".." for "...".
  EXPECT_TRUE(contains(error_of([&] { t.render(split_track_name(".wav"), "vocals", "wav"); }),
                       "not a file path below the output directory"));
  EXPECT_TRUE(contains(error_of([&] { t.render(split_track_name("..."), "vocals", "wav"); }),
                       "not a file path below the output directory"));
  EXPECT_NO_THROW(FilenameTemplate("{track}-{stem}").render(split_track_name(".wav"), "vocals", "wav"));
}

TEST(Naming, OutputRootIsOutDirSlashModel) {
  EXPECT_EQ(output_root(std::nullopt, "htdemucs"), fs::path("separated/htdemucs"));
  EXPECT_EQ(output_root(fs::path("/data/out"), "htdemucs_ft"), fs::path("/data/out/htdemucs_ft"));
  EXPECT_EQ(output_model_name("htdemucs_6s"), "htdemucs_6s");
  EXPECT_EQ(output_model_name("/models/955717e8-8726e21a.th"), "955717e8-8726e21a");
}

TEST(Naming, TwoStems) {
  EXPECT_EQ(two_stem_names("vocals", OtherMethod::add), (std::vector<std::string>{"vocals", "no_vocals"}));
  EXPECT_EQ(two_stem_names("vocals", OtherMethod::minus), (std::vector<std::string>{"vocals", "minus_vocals"}));
  EXPECT_EQ(two_stem_names("drums", OtherMethod::none), (std::vector<std::string>{"drums"}));
  EXPECT_EQ(parse_other_method("minus"), OtherMethod::minus);
  EXPECT_TRUE(contains(error_of([] { parse_other_method("sub"); }), "none, add or minus"));
  std::vector<std::string> sources = {"drums", "bass", "other", "vocals"};
  EXPECT_NO_THROW(check_two_stems("vocals", sources, "htdemucs"));
  EXPECT_EQ(error_of([&] { check_two_stems("voice", sources, "htdemucs"); }),
            "--two-stems: stem 'voice' is not in model htdemucs; STEM must be one of drums, bass, other, vocals");
}

TEST(Naming, PlanListsEveryOutputAndRefusesCollisions) {
  std::vector<fs::path> inputs = {"a/one.wav", "b/two.mp3"};
  auto plan = plan_outputs(inputs, two_stem_names("vocals", OtherMethod::add), FilenameTemplate(), "separated/htdemucs",
                           "flac");
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(plan[0].path, fs::path("separated/htdemucs/one/vocals.flac"));
  EXPECT_EQ(plan[1].path, fs::path("separated/htdemucs/one/no_vocals.flac"));
  EXPECT_EQ(plan[3].input, fs::path("b/two.mp3"));
  EXPECT_EQ(plan[3].stem, "no_vocals");

  std::string e = error_of([&] { plan_outputs(inputs, {"bass"}, FilenameTemplate("{stem}.{ext}"), "out", "wav"); });
  EXPECT_TRUE(contains(e, "writes out/bass.wav twice")) << e;
  EXPECT_TRUE(contains(e, "put {track} in --filename")) << e;
  e = error_of([&] { plan_outputs({"x.wav", "x.wav"}, {"bass"}, FilenameTemplate(), "out", "wav"); });
  EXPECT_TRUE(contains(e, "given twice")) << e;
  // A model naming a stem twice is the model's fault, not the input's.
  e = error_of([&] { plan_outputs({"x.wav"}, {"bass", "drums", "bass"}, FilenameTemplate(), "out", "wav"); });
  EXPECT_EQ(e,
            "the model's stems name 'bass' twice (bass, drums, bass); a model's sources need distinct names: its "
            "package is damaged or was edited");
  // The same name in two directories collides too.
  e = error_of([&] { plan_outputs({"a/x.wav", "b/x.flac"}, {"bass"}, FilenameTemplate(), "out", "wav"); });
  EXPECT_TRUE(contains(e, "writes out/x/bass.wav twice")) << e;
  EXPECT_TRUE(contains(e, "two inputs have the same file name: rename one")) << e;
  EXPECT_NO_THROW(
      plan_outputs({"a/x.wav", "b/x.flac"}, {"bass"}, FilenameTemplate("{track}.{trackext}/{stem}.{ext}"), "o", "wav"));
}

}  // namespace
}  // namespace stemkit::separate
