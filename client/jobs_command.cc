// `lvs jobs list|get|watch|cancel|delete`: the AIP-151 job resources.
#include <cstdio>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/command.h"
#include "client/job_follower.h"
#include "client/progress_bar.h"
#include "google/protobuf/util/json_util.h"

namespace lvs::client {
namespace {

namespace pb = ::lumina::video::v1;

// Prints `message` as JSON (field names as in the proto).
void PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, o);
  std::printf("%s", json.c_str());
}

std::string StateName(pb::JobState state) {
  std::string name = pb::JobState_Name(state);
  return name == "JOB_STATE_UNSPECIFIED" ? "-" : name;
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S",
                          absl::FromUnixSeconds(t.seconds()),
                          absl::LocalTimeZone());
}

// One table row per job.
void PrintJobRow(const pb::VideoJob& job) {
  std::string progress = "-";
  if (job.state() == pb::QUEUED) {
    progress = absl::StrCat("#", job.queue_position());
  } else if (job.progress().total_steps() > 0) {
    progress =
        absl::StrCat(job.progress().step(), "/", job.progress().total_steps());
  }
  std::string prompt = job.request().prompt();
  if (prompt.size() > 40) prompt = prompt.substr(0, 37) + "...";
  std::printf("%-28s %-10s %-8s %-19s %s\n", job.name().c_str(),
              StateName(job.state()).c_str(), progress.c_str(),
              Time(job.create_time()).c_str(), prompt.c_str());
}

int List(const GlobalOptions& options, const std::string& state, int page_size,
         const std::string& page_token, bool all) {
  auto stub = OpenVideoService(options);
  if (stub == nullptr) return 2;
  pb::ListVideoJobsRequest request;
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  if (!state.empty()) {
    pb::JobState s;
    if (!pb::JobState_Parse(state, &s)) {
      std::fprintf(stderr, "lvs: --state: unknown state '%s'\n", state.c_str());
      return 2;
    }
    request.set_state(s);
  }
  bool header = false;
  do {
    pb::ListVideoJobsResponse response;
    grpc::ClientContext context;
    rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
    const grpc::Status status =
        stub->ListVideoJobs(&context, request, &response);
    if (!status.ok()) {
      PrintRpcError("ListVideoJobs", status);
      return 1;
    }
    if (!header) {
      std::printf("%-28s %-10s %-8s %-19s %s\n", "NAME", "STATE", "PROGRESS",
                  "CREATED", "PROMPT");
      header = true;
    }
    for (const pb::VideoJob& job : response.jobs()) PrintJobRow(job);
    request.set_page_token(response.next_page_token());
  } while (all && !request.page_token().empty());
  if (!request.page_token().empty()) {
    std::printf("(more: --page-token %s, or --all)\n",
                request.page_token().c_str());
  }
  return 0;
}

// Runs a unary call on a job name and prints the returned job as JSON.
template <typename Request, typename Response, typename Call>
int OnJob(const GlobalOptions& options, const std::string& id,
          const std::string& method, Call call) {
  auto stub = OpenVideoService(options);
  if (stub == nullptr) return 2;
  Request request;
  request.set_name(JobName(id));
  Response response;
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options.timeout(), options.api_key);
  const grpc::Status status = call(*stub, &context, request, &response);
  if (!status.ok()) {
    PrintRpcError(method, status);
    return 1;
  }
  PrintJson(response);
  return 0;
}

int Watch(const GlobalOptions& options, const std::string& id,
          const std::string& output, int64_t from_offset, bool quiet) {
  auto stub = OpenVideoService(options);
  if (stub == nullptr) return 2;
  ProgressBar bar(stderr);
  auto follower =
      JobFollower::Create(output, from_offset, quiet ? nullptr : &bar);
  if (!follower.ok()) {
    std::fprintf(stderr, "lvs: %s\n",
                 std::string(follower.status().message()).c_str());
    return 1;
  }
  pb::WatchVideoJobRequest request;
  request.set_name(JobName(id));
  request.set_from_offset(from_offset);
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, absl::ZeroDuration(), options.api_key);
  CancelOnInterrupt cancel_on_interrupt(&context);
  auto reader = stub->WatchVideoJob(&context, request);
  const FollowOutcome outcome = (*follower)->Follow(*reader, context);
  if (!outcome.local.ok()) {
    std::fprintf(stderr, "lvs: %s\n", outcome.local.ToString().c_str());
    return 1;
  }
  if (!outcome.rpc.ok()) {
    if (CancelOnInterrupt::interrupted()) return 130;
    PrintRpcError("WatchVideoJob", outcome.rpc);
    return 1;
  }
  if (!(*follower)->completed()) {
    bar.Finish();
    std::fprintf(stderr, "lvs: %s ended without a video\n",
                 JobName(id).c_str());
    return 1;
  }
  const absl::Status local = (*follower)->Finish();
  if (!local.ok()) {
    std::fprintf(stderr, "lvs: %s\n", local.ToString().c_str());
    return 1;
  }
  if (!output.empty()) {
    std::printf("%s: %s\n", output.c_str(),
                FormatBytes((*follower)->result().size_bytes()).c_str());
  }
  return 0;
}

}  // namespace

void RegisterJobsCommand(CLI::App& app, const GlobalOptions& options,
                         CommandResult& result) {
  CLI::App* jobs = app.add_subcommand("jobs", "list, inspect and control jobs");
  jobs->require_subcommand(1);
  jobs->fallthrough();

  struct Flags {
    std::string id, state, output, page_token;
    int page_size = 0;
    int64_t from_offset = 0;
    bool all = false, quiet = false;
  };
  auto f = std::make_shared<Flags>();

  CLI::App* list = jobs->add_subcommand("list", "list your jobs, newest first");
  list->add_option("--state", f->state, "QUEUED, RUNNING, SUCCEEDED, ...");
  list->add_option("--page-size", f->page_size, "jobs per page");
  list->add_option("--page-token", f->page_token,
                   "continue a listing (the token a page printed)");
  list->add_flag("--all", f->all, "follow every page");
  list->callback([f, &options, &result] {
    result.exit_code =
        List(options, f->state, f->page_size, f->page_token, f->all);
  });

  CLI::App* get = jobs->add_subcommand("get", "print one job as JSON");
  get->add_option("job", f->id, "job id or jobs/{id}")->required();
  get->callback([f, &options, &result] {
    result.exit_code = OnJob<pb::GetVideoJobRequest, pb::VideoJob>(
        options, f->id, "GetVideoJob",
        [](pb::VideoService::Stub& s, grpc::ClientContext* c,
           const pb::GetVideoJobRequest& r,
           pb::VideoJob* out) { return s.GetVideoJob(c, r, out); });
  });

  CLI::App* cancel =
      jobs->add_subcommand("cancel", "cancel a queued or running job");
  cancel->add_option("job", f->id, "job id or jobs/{id}")->required();
  cancel->callback([f, &options, &result] {
    result.exit_code = OnJob<pb::CancelVideoJobRequest, pb::VideoJob>(
        options, f->id, "CancelVideoJob",
        [](pb::VideoService::Stub& s, grpc::ClientContext* c,
           const pb::CancelVideoJobRequest& r,
           pb::VideoJob* out) { return s.CancelVideoJob(c, r, out); });
  });

  CLI::App* del =
      jobs->add_subcommand("delete", "delete a finished job and its video");
  del->add_option("job", f->id, "job id or jobs/{id}")->required();
  del->callback([f, &options, &result] {
    result.exit_code =
        OnJob<pb::DeleteVideoJobRequest, google::protobuf::Empty>(
            options, f->id, "DeleteVideoJob",
            [](pb::VideoService::Stub& s, grpc::ClientContext* c,
               const pb::DeleteVideoJobRequest& r,
               google::protobuf::Empty* out) {
              return s.DeleteVideoJob(c, r, out);
            });
  });

  CLI::App* watch = jobs->add_subcommand(
      "watch", "follow a job's progress (and download its MP4 with -o)");
  watch->add_option("job", f->id, "job id or jobs/{id}")->required();
  watch->add_option("-o,--output", f->output, "MP4 file to write");
  watch->add_option("--from-offset", f->from_offset,
                    "resume the download of -o from this byte offset");
  watch->add_flag("-q,--quiet", f->quiet, "no progress bar");
  watch->callback([f, &options, &result] {
    result.exit_code =
        Watch(options, f->id, f->output, f->from_offset, f->quiet);
  });
}

}  // namespace lvs::client
