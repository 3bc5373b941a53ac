// OpenCV-based motion score.
#include "tools/lvs_motion/motion_score.h"

#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>
#include <set>

#include "absl/strings/str_cat.h"

namespace lvs::motion {
namespace {

// RGB24 frame -> float 0..255 grey image, landscape, resized with
// align_corners bilinear sampling to height x width.
cv::Mat Prepare(const media::RgbFrame& f, const MotionOptions& o) {
  cv::Mat rgb(f.height, f.width, CV_8UC3, const_cast<uint8_t*>(f.rgb.data()));
  cv::Mat rgbf;
  rgb.convertTo(rgbf, CV_32FC3);
  if (f.height > f.width) cv::transpose(rgbf, rgbf);  // Landscape.
  // align_corners=True: output pixel i samples input (i * (in-1)/(out-1)).
  const int in_h = rgbf.rows, in_w = rgbf.cols;
  cv::Mat map_x(o.height, o.width, CV_32F), map_y(o.height, o.width, CV_32F);
  const float sx = o.width > 1 ? float(in_w - 1) / float(o.width - 1) : 0.f;
  const float sy = o.height > 1 ? float(in_h - 1) / float(o.height - 1) : 0.f;
  for (int y = 0; y < o.height; ++y) {
    for (int x = 0; x < o.width; ++x) {
      map_x.at<float>(y, x) = x * sx;
      map_y.at<float>(y, x) = y * sy;
    }
  }
  cv::Mat resized, grey;
  cv::remap(rgbf, resized, map_x, map_y, cv::INTER_LINEAR,
            cv::BORDER_REPLICATE);
  cv::cvtColor(resized, grey, cv::COLOR_RGB2GRAY);
  return grey;
}

cv::Mat Flow(const cv::Mat& a, const cv::Mat& b, FlowMethod method) {
  cv::Mat a8, b8, flow;
  a.convertTo(a8, CV_8U);
  b.convertTo(b8, CV_8U);
  if (method == FlowMethod::kDis) {
    cv::Ptr<cv::DISOpticalFlow> dis =
        cv::DISOpticalFlow::create(cv::DISOpticalFlow::PRESET_MEDIUM);
    dis->calc(a8, b8, flow);
  } else {
    cv::calcOpticalFlowFarneback(a8, b8, flow, 0.5, 4, 15, 3, 5, 1.2, 0);
  }
  return flow;
}

}  // namespace

std::vector<int64_t> MotionFrameIndices(double fps, int64_t frame_count,
                                        const MotionOptions& o) {
  std::vector<int64_t> out;
  std::set<int64_t> seen;
  for (int k = 0; k * o.interval_seconds <= o.until_seconds + 1e-9; ++k) {
    const int64_t i = std::llround(k * o.interval_seconds * fps);
    if (i >= frame_count) break;
    if (seen.insert(i).second) out.push_back(i);
  }
  return out;
}

absl::StatusOr<double> MotionScore(const std::vector<media::RgbFrame>& frames,
                                   const MotionOptions& o) {
  if (frames.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "motion score needs at least 2 sampled frames, got ", frames.size()));
  }
  double sum = 0;
  int64_t count = 0;
  cv::Mat prev = Prepare(frames[0], o);
  for (size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].width != frames[0].width ||
        frames[i].height != frames[0].height) {
      return absl::InvalidArgumentError("frames of different sizes");
    }
    cv::Mat next = Prepare(frames[i], o);
    const cv::Mat flow = Flow(prev, next, o.method);
    sum += cv::sum(cv::abs(flow))[0] + cv::sum(cv::abs(flow))[1];
    count += static_cast<int64_t>(flow.total()) * 2;
    prev = next;
  }
  return sum / static_cast<double>(count);
}

absl::StatusOr<double> MotionScoreOfFile(const std::string& path,
                                         const MotionOptions& o) {
  absl::StatusOr<std::unique_ptr<media::VideoDecoder>> dec =
      media::VideoDecoder::OpenFile(path);
  if (!dec.ok()) return dec.status();
  const media::VideoStreamInfo& info = (*dec)->info();
  const double fps =
      info.fps_den > 0 ? double(info.fps_num) / double(info.fps_den) : 0;
  if (fps <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unknown fps"));
  }
  const int64_t needed = std::llround(o.until_seconds * fps) + 1;
  absl::StatusOr<std::vector<media::RgbFrame>> all = (*dec)->DecodeAll(needed);
  if (!all.ok()) return all.status();
  std::vector<media::RgbFrame> sampled;
  for (int64_t i : MotionFrameIndices(fps, all->size(), o)) {
    sampled.push_back(std::move((*all)[i]));
  }
  absl::StatusOr<double> score = MotionScore(sampled, o);
  if (!score.ok()) {
    return absl::Status(score.status().code(),
                        absl::StrCat(path, ": ", score.status().message()));
  }
  return score;
}

}  // namespace lvs::motion
