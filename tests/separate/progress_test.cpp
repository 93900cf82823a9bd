// The progress bar: the line format for MB and for seconds of audio, ETA
// formatting, redraw throttling (a fake clock), and silence when the stream is
// not a terminal or the bar is quiet. A run's progress (RunProgress): plain
// lines at an interval when not on a terminal, nothing but messages when
// quiet, and on a terminal a block redrawn in place with messages above it.
#include "runtime/separate/progress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace stemkit::separate {
namespace {

std::string contents(FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  int c;
  while ((c = std::fgetc(f)) != EOF) s += static_cast<char>(c);
  std::fseek(f, 0, SEEK_END);  // back to writing
  return s;
}

long frames(const std::string& s) { return std::count(s.begin(), s.end(), '\r'); }

// The text of the last frame, without the padding.
std::string last_frame(const std::string& s) {
  std::string frame = s.substr(s.rfind('\r') + 1);
  while (!frame.empty() && (frame.back() == ' ' || frame.back() == '\n')) frame.pop_back();
  return frame;
}

TEST(Progress, LineInMegabytes) {
  EXPECT_EQ(render_progress_line("htdemucs", 12.3e6, 27.1e6, 3.2e6, ProgressUnit::megabytes(), 10),
            "htdemucs [####......] 45% 12.3/27.1 MB 3.2 MB/s ETA 0:05");
}

TEST(Progress, LineInSecondsOfAudio) {
  EXPECT_EQ(render_progress_line("song.wav", 60, 200, 12.5, ProgressUnit::audio_seconds(), 10),
            "song.wav [###.......] 30% 60.0/200.0 s 12.5x ETA 0:11");
}

TEST(Progress, UnknownTotalAndUnknownRate) {
  EXPECT_EQ(render_progress_line("x", 1.5e6, -1, 0.5e6, ProgressUnit::megabytes(), 10), "x 1.5 MB 0.5 MB/s");
  EXPECT_EQ(render_progress_line("x", 0, 2e6, -1, ProgressUnit::megabytes(), 4), "x [....] 0% 0.0/2.0 MB ETA --:--");
  EXPECT_EQ(render_progress_line("x", 2e6, 2e6, -1, ProgressUnit::megabytes(), 4), "x [####] 100% 2.0/2.0 MB ETA 0:00");
  // More than the total (a server that lied) stays at 100%.
  EXPECT_EQ(render_progress_line("x", 3e6, 2e6, 1e6, ProgressUnit::megabytes(), 4),
            "x [####] 100% 3.0/2.0 MB 1.0 MB/s ETA 0:00");
}

TEST(Progress, Eta) {
  EXPECT_EQ(format_eta(0), "0:00");
  EXPECT_EQ(format_eta(5), "0:05");
  EXPECT_EQ(format_eta(754), "12:34");
  EXPECT_EQ(format_eta(3723), "1:02:03");
  EXPECT_EQ(format_eta(-1), "--:--");
}

TEST(Progress, SilentWhenNotATerminalOrQuiet) {
  for (bool quiet : {false, true}) {
    FILE* f = std::tmpfile();
    ProgressBar::Options options;
    options.stream = f;
    options.quiet = quiet;
    options.is_terminal = quiet;  // quiet wins over a terminal; a file without quiet is still silent
    {
      ProgressBar bar(options);
      EXPECT_FALSE(bar.enabled());
      bar.update(1, 2);
      bar.update(2, 2);
    }
    EXPECT_EQ(contents(f), "");
    std::fclose(f);
  }
  // A real file is not a terminal.
  FILE* f = std::tmpfile();
  ProgressBar::Options options;
  options.stream = f;
  EXPECT_FALSE(ProgressBar(options).enabled());
  std::fclose(f);
}

TEST(Progress, RedrawsAtMostTenTimesASecond) {
  FILE* f = std::tmpfile();
  double now = 0;
  ProgressBar::Options options;
  options.label = "dl";
  options.stream = f;
  options.is_terminal = true;
  options.bar_width = 4;
  options.clock = [&] { return now; };
  {
    ProgressBar bar(options);
    ASSERT_TRUE(bar.enabled());
    for (int i = 0; i <= 100; ++i) {  // 100 updates over one second: about 10 frames
      now = i * 0.01;
      bar.update(i * 1e4, 2e6);
    }
    long drawn = frames(contents(f));
    EXPECT_GE(drawn, 10);
    EXPECT_LE(drawn, 11);
    now = 1.001;
    bar.update(2e6, 2e6);  // complete: drawn at once, whatever the interval
    EXPECT_EQ(frames(contents(f)), drawn + 1);
  }
  std::string out = contents(f);
  EXPECT_EQ(out.back(), '\n');  // finish() ends the line
  EXPECT_EQ(last_frame(out).substr(0, 25), "dl [####] 100% 2.0/2.0 MB");
  std::fclose(f);
}

TEST(Progress, ShorterFramesOverwriteLongerOnes) {
  FILE* f = std::tmpfile();
  double now = 0;
  ProgressBar::Options options;
  options.label = "x";
  options.stream = f;
  options.is_terminal = true;
  options.clock = [&] { return now; };
  options.unit = ProgressUnit::audio_seconds();
  {
    ProgressBar bar(options);
    bar.update(100, -1);
    now = 1;
    bar.update(5, -1);  // shorter text: padded with spaces to cover the old frame
  }
  std::string out = contents(f);
  size_t first = out.find('\r'), second = out.find('\r', first + 1), third = out.find('\r', second + 1);
  ASSERT_NE(third, std::string::npos);
  EXPECT_EQ(out.substr(first, second - first), "\rx 100.0 s");
  EXPECT_EQ(out.substr(second, third - second), "\rx 5.0 s  ");
  std::fclose(f);
}

TEST(RunProgress, AudioDurations) {
  EXPECT_EQ(format_audio_duration(42), "42.0 s");
  EXPECT_EQ(format_audio_duration(750), "12.5 min");
  EXPECT_EQ(format_audio_duration(11700), "3.25 h");
}

TEST(RunProgress, NotATerminalPlainLinesAtMostEveryInterval) {
  FILE* f = std::tmpfile();
  double now = 0;
  RunProgress::Options options;
  options.files = 4;
  options.stream = f;
  options.is_terminal = false;
  options.log_interval_s = 10;
  options.clock = [&] { return now; };
  {
    RunProgress run(options);
    run.start_file(0, "one", 30);  // no bar: not a terminal
    run.update(0, 15);
    now = 1;
    run.end_file(0, true);
    run.file_done(true, 30, true);  // within the interval: no line yet
    run.message("separate: one.wav: done");
    now = 11;
    run.file_done(false, 0, false);
    now = 12;
    run.file_done(true, 90, false);  // within 10 s of the last line
    now = 22;
    run.file_done(true, 60, false);
  }
  EXPECT_EQ(contents(f),
            "separate: one.wav: done\n"
            "separate: 2 of 4 files done (1 failed), 30.0 s of audio, 2.7x realtime, ETA 0:11\n"
            "separate: 4 of 4 files done (1 failed), 3.0 min of audio, 8.2x realtime, ETA 0:00\n");
  std::fclose(f);
}

TEST(RunProgress, QuietSaysOnlyTheMessages) {
  for (bool terminal : {false, true}) {
    FILE* f = std::tmpfile();
    RunProgress::Options options;
    options.files = 2;
    options.stream = f;
    options.quiet = true;
    options.is_terminal = terminal;
    options.log_interval_s = 0;
    {
      RunProgress run(options);
      run.start_file(0, "one", 30);
      run.update(0, 30);
      run.end_file(0, true);
      run.file_done(false, 0, true);
      run.message("separate: one.wav: cannot read it");
      run.file_done(true, 30, false);
    }
    EXPECT_EQ(contents(f), "separate: one.wav: cannot read it\n") << terminal;
    std::fclose(f);
  }
}

TEST(RunProgress, TheEtaCountsThePartOfTheFilesBeingSeparated) {
  double now = 0;
  RunProgress::Options options;
  options.files = 2;
  options.stream = nullptr;
  options.slots = {"cpu#0", "cpu#1"};
  options.clock = [&] { return now; };
  RunProgress run(options);
  EXPECT_EQ(run.run_line(0), "separate [....................] 0/2 files, 0.0 s of audio, ETA --:--");
  run.start_file(0, "a", 100);
  now = 10;
  run.update(0, 50);  // half of one of two files in 10 s: 30 s left
  EXPECT_EQ(run.run_line(now), "separate [....................] 0/2 files, 0.0 s of audio, ETA 0:30");
  run.end_file(0, true);
  // Separated, its stems not yet written: counted by the ETA, not yet done.
  EXPECT_EQ(run.run_line(now), "separate [....................] 0/2 files, 0.0 s of audio, ETA 0:10");
  run.file_done(true, 100, true);
  EXPECT_EQ(run.run_line(now), "separate [##########..........] 1/2 files, 1.7 min of audio, 10.0x, ETA 0:10");
}

TEST(RunProgress, OnATerminalABlockWithABarPerDeviceAndMessagesAboveIt) {
  FILE* f = std::tmpfile();
  double now = 0;
  RunProgress::Options options;
  options.files = 3;
  options.stream = f;
  options.is_terminal = true;
  options.slots = {"cuda:0", "cuda:1"};
  options.clock = [&] { return now; };
  {
    RunProgress run(options);
    run.start_file(0, "one", 10);
    now = 1;
    run.start_file(1, "two", 20);
    // The block: the run's line, then each device's bar.
    std::string out = contents(f);
    const std::string last = out.substr(out.rfind("\x1b[J") + 3);
    EXPECT_EQ(last,
              "separate [....................] 0/3 files, 0.0 s of audio, ETA --:--\n"
              "cuda:0 one [..............................] 0% 0.0/10.0 s ETA --:--\n"
              "cuda:1 two [..............................] 0% 0.0/20.0 s ETA --:--");
    // A message: the block erased (back up its three lines), the message, the block again.
    const size_t before = out.size();
    run.message("separate: zero.wav: cannot read it");
    out = contents(f);
    EXPECT_EQ(out.substr(before, 8 + 35), "\r\x1b[2A\x1b[Jseparate: zero.wav: cannot read it\n");
    EXPECT_EQ(out.substr(before + 8 + 35, 9), "separate ");
    now = 2;
    run.update(0, 5);
    run.end_file(0, true);  // its bar goes; the other device's stays
    run.file_done(true, 10, true);
    out = contents(f);
    EXPECT_EQ(out.substr(out.rfind("\x1b[J") + 3),
              "separate [######..............] 1/3 files, 10.0 s of audio, 5.0x, ETA 0:04\n"
              "cuda:1 two [..............................] 0% 0.0/20.0 s ETA --:--");
    for (size_t r = out.find('\r'); r != std::string::npos; r = out.find('\r', r + 1))
      EXPECT_EQ(out.substr(r + 1, 2), "\x1b[") << "a carriage return only to go back to the block's start";
  }
  // finish: the run's line stays, the bars go, the line ends.
  std::string out = contents(f);
  EXPECT_EQ(out.substr(out.rfind("\x1b[J") + 3),
            "separate [######..............] 1/3 files, 10.0 s of audio, 5.0x, ETA 0:04\n");
  std::fclose(f);
}

}  // namespace
}  // namespace stemkit::separate
