// gedge tune pin|bench: bind a command, a running process or a device's container to a plan and
// verify it; A/B benchmark a command pinned vs unpinned. Shared flags and helpers: tune.hpp.
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "tune.hpp"

namespace gedge::cli::tune {

void register_pin(CLI::App* cmd, Ctx& ctx) {
  // ---- pin ----------------------------------------------------------------------------------
  {
    static SourceFlags src;
    static topo::PlanFlags pf;
    static int pid = 0;
    static std::string container;
    static bool dry_run = false;
    static std::vector<std::string> command;
    auto* pin = cmd->add_subcommand(
        "pin", "Bind a command, a running process or a device's container, and verify it");
    add_plan_flags(pin, pf, true);
    pin->add_option("--pid", pid, "Rebind this running process (all its threads)")
        ->option_text("PID");
    pin->add_option("--device", src.device, "With --container: the registered device running it")
        ->option_text("NAME");
    pin->add_option("--container", container,
                    "A podman container on --device: podman update --cpuset-cpus/--cpuset-mems")
        ->option_text("NAME");
    pin->add_flag("--membind", pf.membind, "With -- CMD: bind memory to the plan's NUMA nodes too");
    pin->add_flag("--dry-run", dry_run, "Print the plan and what would run; change nothing");
    pin->add_option("command", command, "-- CMD ARGS...: bind, then exec CMD");
    examples(pin, {"gedge tune pin --cpuset 1 -- ./server --port 8080",
                   "gedge tune pin --cores 1 --no-smt --membind -- python3 infer.py",
                   "gedge tune pin --cores 2 --pid 4242 -o json",
                   "gedge tune pin --cores 2 --device edge1 --container detector -o json"});
    on_run(pin, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY(ctx.format());
      if (command.empty()) command = ctx.g.after_dashdash;  // main splits argv at "--"
      int targets = (pid > 0) + (!container.empty()) + (!command.empty());
      if (targets != 1)
        return fail(ErrorCode::usage,
                    "give exactly one target: -- CMD, --pid PID, or --device D --container NAME");
      if (!container.empty() && src.device.empty())
        return fail(ErrorCode::usage, "--container needs --device");
      if (container.empty() && !src.device.empty())
        return fail(ErrorCode::usage, "--device needs --container");
      GEDGE_TRY_ASSIGN(auto req, topo::plan_request(pf));

      if (!container.empty()) {
        GEDGE_TRY_ASSIGN(auto t, load_source(ctx, src));
        GEDGE_TRY_ASSIGN(req.pinned, device_pins(ctx, src.device, container));
        GEDGE_TRY_ASSIGN(auto p, topo::plan(t, req));
        auto j = p.to_json();
        j["device"] = src.device;
        j["container"] = container;
        if (dry_run) {
          j["dry_run"] = true;
          j["would_run"] = topo::podman_update_argv(p, container);
          return Outcome{plan_view(j), std::nullopt, std::nullopt};
        }
        GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
        GEDGE_TRY_ASSIGN(Inventory * inv, ctx.inventory());
        GEDGE_TRY_ASSIGN(auto res, svc::pin_device_container(*inv, paths, ctx.g.timeout_s,
                                                             src.device, container, p));
        j["applied"] = res["applied"];
        j["recorded"] = true;
        return Outcome{plan_view(j), std::nullopt, std::nullopt};
      }

      GEDGE_TRY_ASSIGN(auto t, topo::Topology::load({}));
      GEDGE_TRY_ASSIGN(auto p, topo::plan(t, req));
      auto j = p.to_json();
      if (pid > 0) {
        j["pid"] = pid;
        if (dry_run) {
          j["dry_run"] = true;
          return Outcome{plan_view(j), std::nullopt, std::nullopt};
        }
        GEDGE_TRY_ASSIGN(auto a, topo::bind_pid(t, p, static_cast<pid_t>(pid)));
        j["applied"] = a.to_json();
        return Outcome{plan_view(j), std::nullopt, std::nullopt};
      }

      // -- CMD: bind this process, verify, then become CMD. stdout belongs to CMD, so the record
      // of what was applied goes to stderr (one JSON line under -o json).
      j["command"] = command;
      if (dry_run) {
        j["dry_run"] = true;
        return Outcome{plan_view(j), std::nullopt, std::nullopt};
      }
      GEDGE_TRY_ASSIGN(auto a, topo::bind_self(t, p, pf.membind));
      j["applied"] = a.to_json();
      j["pid"] = ::getpid();
      log_line("info", fmt::format("tune pin exec pid={} cpuset={} cmd={}", ::getpid(),
                                   topo::format_list(p.cpus), command[0]));
      GEDGE_TRY_ASSIGN(auto f, ctx.format());
      if (f == Format::json)
        std::cerr << j.dump() << "\n";
      else
        ctx.reporter().info(fmt::format(
            "pinned to CPUs {} (memory nodes {}{}), verified; exec {}", topo::format_list(a.cpus),
            topo::format_list(p.memory_nodes), pf.membind ? ", bound" : "", command[0]));
      std::cerr << std::flush;
      std::cout << std::flush;
      std::vector<char*> args;
      for (auto& s : command) args.push_back(s.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      return fail(errno == ENOENT ? ErrorCode::not_found : ErrorCode::failure,
                  fmt::format("cannot run '{}': {}", command[0], std::strerror(errno)),
                  "check the command and PATH");
    });
  }
}

void register_bench(CLI::App* cmd, Ctx& ctx) {
  // ---- bench --------------------------------------------------------------------------------
  {
    static topo::PlanFlags pf;
    static int runs = 10;
    static int warmup = 1;
    static std::vector<std::string> command;
    auto* b = cmd->add_subcommand(
        "bench", "A/B benchmark: CMD unpinned vs pinned, interleaved, medians and p95");
    add_plan_flags(b, pf, true);
    b->add_option("--runs", runs, "Runs per side")->check(CLI::Range(2, 10000))->option_text("N");
    b->add_option("--warmup", warmup, "Unmeasured runs per side first")
        ->check(CLI::Range(0, 100))
        ->option_text("N");
    b->add_flag("--membind", pf.membind,
                "Bind the pinned runs' memory to the plan's NUMA nodes too");
    b->add_option("command", command, "-- CMD ARGS...: the workload (its output is discarded)");
    examples(
        b,
        {"gedge tune bench --runs 20 --cpuset 1 -- ./membw 256",
         "gedge tune bench --cores 4 --near gpu0 --no-smt -o json -- python3 infer.py --batch 8"});
    on_run(b, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY(ctx.format());
      if (command.empty()) command = ctx.g.after_dashdash;  // main splits argv at "--"
      if (command.empty())
        return fail(ErrorCode::usage, "no command to benchmark",
                    "usage: gedge tune bench [flags] -- CMD ARGS...");
      GEDGE_TRY_ASSIGN(auto req, topo::plan_request(pf));
      GEDGE_TRY_ASSIGN(auto t, topo::Topology::load({}));
      GEDGE_TRY_ASSIGN(auto p, topo::plan(t, req));
      topo::BenchRequest br{command, runs, warmup, t.allowed_pus(), p, pf.membind};
      GEDGE_TRY_ASSIGN(auto r, topo::bench(br, ctx.reporter()));
      r["plan"] = p.to_json();
      r["topology"] = t.summary();
      r["table"] = topo::bench_rows(r, p);
      std::string footer = topo::bench_footer(r, runs);
      View v{r,
             {{"side", "/side"},
              {"cpuset", "/cpuset"},
              {"median s", "/median_s"},
              {"p95 s", "/p95_s"}},
             "/table",
             footer};
      return Outcome{v, std::nullopt, std::nullopt};
    });
  }
}

}  // namespace gedge::cli::tune
