defmodule LsmIndex.Demo.Driver do
  @moduledoc """
  The end-to-end demo (`mix demo`, `./run demo`; not public API): PostgreSQL's logical
  replication in, every shape consistent out.

      PostgreSQL ─ wal2json (slot, peek) ─▶ Wal2json.decode ─▶ change tuples
        ─▶ Routing.route (ShapeRouter.route_many per table and transaction |
                          Filter.affected_shapes_many per transaction)
        ─▶ ShapeLog (each shape's rows; durable frame + LSN) ─▶ slot advanced to that LSN
      at the end: Check (every shape against SELECT id FROM t WHERE <shape>, one psql session)

  A run: start a throwaway cluster (or attach to one: `--pg-dir`), create the schema, register
  the shapes, then create the slot — every change it will send is routed, and each shape's
  rows come from the stream alone — start the writer (`LsmIndex.Demo.Workload`) and consume
  until the writer is done and the slot has nothing more; check; print the summary.

  With `--state-dir DIR` the routers are persistent (`DIR/router/<table>`) and the shapes'
  rows are logged in `DIR/shapes.log`; a driver started again on the same directory (after
  a SIGKILL, say) reopens the routers, rebuilds the rows from the log, confirms the slot up
  to the log's LSN and carries on (the writer resumes from its committed counters).

  Options (defaults): `--shapes` (100,000), `--seconds` (45: how long the writer runs),
  `--txns` (none: stop the writer at this many transactions), `--via` (`router`,
  `filter-lsm`, `filter-map`), `--seed` (1), `--users`/`--projects`/`--todos` (rows seeded:
  shapes/10, shapes/50, shapes/5), `--truncate-every` (10,000 transactions), `--rate`
  (1,000: transactions/s the writer holds at most; 0: as fast as it goes), `--state-dir`, `--pg-dir`,
  `--database` (`demo`), `--peek-rows` (5,000 decoded rows per read), `--progress-ms`
  (1,000), `--halt-before-confirm N` (tests: the VM kills itself after its N-th durable
  frame, before confirming it to the slot). Returns the exit status: 0 when every shape is consistent, 1 otherwise.
  """

  alias LsmIndex.Demo.{Check, Postgres, Psql, Routing, Schema, ShapeLog, Shapes, Slot, Workload}

  @switches [
    shapes: :integer,
    seconds: :float,
    txns: :integer,
    via: :string,
    seed: :integer,
    users: :integer,
    projects: :integer,
    todos: :integer,
    truncate_every: :integer,
    rate: :integer,
    state_dir: :string,
    pg_dir: :string,
    database: :string,
    peek_rows: :integer,
    progress_ms: :integer,
    halt_before_confirm: :integer
  ]
  @vias %{"router" => :router, "filter-lsm" => :filter_lsm, "filter-map" => :filter_map}

  @doc "Runs the demo with command-line `args`; returns the exit status."
  @spec main([String.t()]) :: 0 | 1
  def main(args) do
    {opts, rest} = OptionParser.parse!(args, strict: @switches)
    if rest != [], do: raise(ArgumentError, "unexpected arguments: #{Enum.join(rest, " ")}")
    config = config(opts)
    pg = if opts[:pg_dir], do: Postgres.attach(opts[:pg_dir]), else: start_cluster()

    try do
      run(pg, config)
    after
      unless opts[:pg_dir], do: Postgres.stop(pg)
    end
  end

  defp start_cluster do
    say("starting a throwaway PostgreSQL (wal_level=logical, unix socket only)")
    Postgres.start(logical: true, shared_buffers: "128MB")
  end

  # the options, with what a resumed run keeps from its first start
  defp config(opts) do
    via = Map.get(@vias, opts[:via] || "router") || raise(ArgumentError, "--via: #{opts[:via]}")
    shapes = opts[:shapes] || 100_000
    seconds = if opts[:txns], do: opts[:seconds], else: opts[:seconds] || 45.0

    config = %{
      via: via,
      shapes: shapes,
      seed: opts[:seed] || 1,
      users: opts[:users] || max(50, div(shapes, 10)),
      projects: opts[:projects] || max(10, div(shapes, 50)),
      todos: opts[:todos] || max(200, div(shapes, 5)),
      database: opts[:database] || "demo",
      seconds: seconds,
      txns: opts[:txns],
      truncate_every: opts[:truncate_every] || 10_000,
      rate: if(opts[:rate] == 0, do: nil, else: opts[:rate] || 1_000),
      state_dir: opts[:state_dir],
      peek_rows: opts[:peek_rows] || 5_000,
      progress_ms: opts[:progress_ms] || 1_000,
      halt_before_confirm: opts[:halt_before_confirm],
      resumed: false
    }

    if config.state_dir && via != :router,
      do: raise(ArgumentError, "--state-dir needs --via router (the filter is in memory)")

    meta = config.state_dir && Path.join(config.state_dir, "meta")

    if meta && File.exists?(meta) do
      kept = meta |> File.read!() |> :erlang.binary_to_term()
      Map.merge(config, kept) |> Map.put(:resumed, true)
    else
      config
    end
  end

  @kept [:via, :shapes, :seed, :users, :projects, :todos, :database, :truncate_every]

  defp run(pg, config) do
    slot = "lsm_demo_#{config.database}"

    unless config.resumed do
      admin = Psql.open(pg)
      Psql.run(admin, "CREATE DATABASE #{config.database};")
      Psql.close(admin)
    end

    session = Psql.open(pg, config.database)
    unless config.resumed, do: Psql.run(session, Schema.ddl())

    shapes = Shapes.generate(config.shapes, config.seed, config.users, config.projects)
    {routing, build} = build_routing(config, shapes)

    unless config.resumed do
      Slot.create(session, slot)

      if config.state_dir do
        meta = Path.join(config.state_dir, "meta")
        File.write!(meta <> ".tmp", :erlang.term_to_binary(Map.take(config, @kept)), [:sync])
        File.rename!(meta <> ".tmp", meta)
      end
    end

    log = ShapeLog.open(config.state_dir && Path.join(config.state_dir, "shapes.log"))
    resume_slot(session, slot, log)

    if config.resumed,
      do: say("resumed: #{log.frames} durable frames, up to #{Slot.format_lsn(log.lsn)}")

    workload =
      Workload.start_link(pg, config.database,
        seed: config.seed,
        users: config.users,
        projects: config.projects,
        todos: config.todos,
        txns: config.txns,
        seconds: config.seconds,
        truncate_every: config.truncate_every,
        rate: config.rate
      )

    stats = consume(session, slot, routing, log, config, workload)
    say("checking #{config.shapes} shapes against PostgreSQL")
    {check_us, check} = :timer.tc(fn -> Check.run(session, shapes, stats.log) end)
    summary(config, build, stats, check, check_us, Routing.metrics(routing))
    ShapeLog.close(stats.log)
    Routing.close(routing)
    Psql.close(session)
    if check.missing == 0 and check.extra == 0, do: 0, else: 1
  end

  defp build_routing(config, shapes) do
    path = config.state_dir && Path.join(config.state_dir, "router")
    if path, do: File.mkdir_p!(path)
    rss0 = rss()
    heap0 = :erlang.memory(:total)
    t0 = System.monotonic_time(:millisecond)
    {routing, reopened} = Routing.new(config.via, shapes, path)
    ms = System.monotonic_time(:millisecond) - t0
    verb = if reopened, do: "reopened", else: "registered"
    say("#{verb} #{fmt(config.shapes)} shapes (#{config.via}) in #{ms} ms")
    {routing, %{ms: ms, rss: rss() - rss0, heap: :erlang.memory(:total) - heap0, verb: verb}}
  end

  # The slot must stand at the log's LSN: after a crash between a durable frame and the
  # slot's advance, it is behind (advance it); it is never ahead of a log that has frames.
  defp resume_slot(session, slot, log) do
    confirmed = Slot.confirmed(session, slot)

    cond do
      log.frames == 0 ->
        :ok

      log.lsn > confirmed ->
        say(
          "the slot (#{Slot.format_lsn(confirmed)}) is behind the durable shape log: " <>
            "advanced to #{Slot.format_lsn(log.lsn)}"
        )

        Slot.advance(session, slot, log.lsn)

      log.lsn == confirmed ->
        :ok

      true ->
        raise "the slot is past the durable shape log: confirmed before durable"
    end
  end

  defp consume(session, slot, routing, log, config, workload) do
    now = System.monotonic_time(:millisecond)

    state = %{
      session: session,
      slot: slot,
      routing: routing,
      log: log,
      config: config,
      workload: workload,
      tables: Enum.map(Schema.names(), &"public.#{&1}"),
      written: 0,
      done: false,
      txns: 0,
      changes: 0,
      truncates: 0,
      route_ns: [],
      per_change_ns: [],
      route_total: 0,
      probe_total: 0,
      split: %{read: 0, apply: 0, confirm: 0},
      reads: 0,
      commits: 0,
      ops: 0,
      started: now,
      last: {now, 0, 0}
    }

    consume(state)
  end

  defp consume(state) do
    state = mailbox(state, 0)
    t0 = System.monotonic_time()
    txns = Slot.peek(state.session, state.slot, state.tables, state.config.peek_rows)
    state = %{split(state, :read, t0) | reads: state.reads + 1}

    case txns do
      [] when state.done ->
        state |> progress(true) |> Map.put(:finished, System.monotonic_time(:millisecond))

      [] ->
        state |> mailbox(20) |> progress(false) |> consume()

      txns ->
        state = Enum.reduce(txns, state, &route_txn/2)
        {lsn, _} = List.last(txns)
        t0 = System.monotonic_time()
        log = ShapeLog.commit(state.log, lsn)
        crash_point(state.config.halt_before_confirm, state.commits + 1)
        Slot.advance(state.session, state.slot, lsn)

        %{state | log: log, commits: state.commits + 1}
        |> split(:confirm, t0)
        |> progress(false)
        |> consume()
    end
  end

  # `--halt-before-confirm N` (tests): the VM kills itself between the N-th durable frame of
  # this run and the slot's advance, the window where the slot is behind the log
  defp crash_point(n, n) do
    IO.puts("halting between a durable frame and the slot's confirmation (crash point)")
    System.cmd("kill", ["-KILL", System.pid()])
    Process.sleep(:infinity)
  end

  defp crash_point(_n, _commits), do: :ok

  # time spent since `t0` in one part of the pipeline
  defp split(state, part, t0),
    do: %{state | split: Map.update!(state.split, part, &(&1 + System.monotonic_time() - t0))}

  defp mailbox(state, timeout) do
    receive do
      {:workload, :progress, n} -> mailbox(%{state | written: n}, 0)
      {:workload, :done, n} -> mailbox(%{state | written: n, done: true}, 0)
    after
      timeout -> state
    end
  end

  # a transaction already in the durable log (cannot happen after `resume_slot`) is skipped
  defp route_txn({lsn, _changes}, %{log: %{lsn: durable}} = state) when lsn <= durable, do: state

  defp route_txn({_lsn, changes}, state) do
    {ops, route_t, probe_t} = Routing.route(state.routing, changes)
    t0 = System.monotonic_time()
    log = ShapeLog.apply_ops(state.log, ops)
    state = split(state, :apply, t0)
    n = length(changes)
    state = %{state | ops: state.ops + length(ops)}
    route_ns = System.convert_time_unit(route_t, :native, :nanosecond)
    probe_ns = System.convert_time_unit(probe_t, :native, :nanosecond)

    %{
      state
      | log: log,
        txns: state.txns + 1,
        changes: state.changes + n,
        truncates: state.truncates + Enum.count(changes, &match?({:truncate, _}, &1)),
        route_ns: if(n > 0, do: [route_ns | state.route_ns], else: state.route_ns),
        per_change_ns:
          if(n > 0, do: [div(route_ns, n) | state.per_change_ns], else: state.per_change_ns),
        route_total: state.route_total + route_ns,
        probe_total: state.probe_total + probe_ns
    }
  end

  defp progress(state, final) do
    now = System.monotonic_time(:millisecond)
    {at, txns0, changes0} = state.last

    if final or now - at >= state.config.progress_ms do
      secs = max(now - at, 1) / 1000

      durable =
        if state.config.state_dir, do: " | durable #{Slot.format_lsn(state.log.lsn)}", else: ""

      IO.puts(
        "[#{:erlang.float_to_binary((now - state.started) / 1000, decimals: 1)}s] " <>
          "written #{fmt(state.written)} txns | routed #{fmt(state.txns)} txns, " <>
          "#{fmt(state.changes)} changes | #{fmt(round((state.txns - txns0) / secs))} txn/s, " <>
          "#{fmt(round((state.changes - changes0) / secs))} changes/s" <> durable
      )

      %{state | last: {now, state.txns, state.changes}}
    else
      state
    end
  end

  defp summary(config, build, stats, check, check_us, metrics) do
    wall = max(stats.finished - stats.started, 1) / 1000
    route_s = max(stats.route_total, 1) / 1.0e9
    consistent = check.missing == 0 and check.extra == 0

    lines = [
      "",
      "== lsm_index end to end: #{fmt(config.shapes)} shapes via #{config.via}" <>
        if(config.resumed, do: " (resumed after a restart)", else: "") <> " ==",
      "stream      #{fmt(stats.txns)} transactions, #{fmt(stats.changes)} changes " <>
        "(#{stats.truncates} truncates) decoded and routed in #{f1(wall)} s: " <>
        "#{fmt(round(stats.txns / wall))} txn/s, #{fmt(round(stats.changes / wall))} changes/s " <>
        "end to end",
      "routing     #{fmt(round(stats.txns / route_s))} txn/s, #{fmt(round(stats.changes / route_s))} " <>
        "changes/s in the routing calls alone (#{f1(route_s)} s in all; updates' new rows " <>
        "#{f1(stats.probe_total / 1.0e9)} s more)",
      "route time  per transaction p50 #{us(pct(stats.route_ns, 0.5))}, p99 " <>
        "#{us(pct(stats.route_ns, 0.99))}; per change (the call / its changes) p50 " <>
        "#{us(pct(stats.per_change_ns, 0.5))}, p99 #{us(pct(stats.per_change_ns, 0.99))}",
      "time split  reading the slot + decoding #{secs(stats.split.read)} s (#{fmt(stats.reads)} " <>
        "peeks), routing " <>
        "#{f1(stats.route_total / 1.0e9)} s + updates' new rows #{f1(stats.probe_total / 1.0e9)} s, " <>
        "applying to the shapes' rows #{secs(stats.split.apply)} s, durable + confirm " <>
        "#{secs(stats.split.confirm)} s"
    ]

    lines = lines ++ router_lines(metrics)

    lines =
      lines ++
        [
          "memory      #{build.verb} shapes in #{build.ms} ms: VM resident +#{mib(build.rss)} MiB, " <>
            "BEAM heap +#{mib(build.heap)} MiB; now resident #{mib(rss())} MiB",
          "clients     #{fmt(stats.ops)} shape-log entries applied; #{fmt(ShapeLog.size(stats.log))} " <>
            "(shape, row) pairs held at the end" <>
            if(config.state_dir, do: ", #{stats.log.frames} durable frames", else: ""),
          "check       #{fmt(check.shapes)} shapes against PostgreSQL (#{fmt(check.rows)} rows) in " <>
            "#{f1(check_us / 1.0e6)} s: #{check.missing} missing, #{check.extra} extra — " <>
            if(consistent, do: "CONSISTENT", else: "INCONSISTENT")
        ] ++ Enum.map(Enum.reverse(check.examples), &("  " <> &1))

    Enum.each(lines, &IO.puts/1)
  end

  defp router_lines(metrics) when metrics == %{}, do: []

  defp router_lines(metrics) do
    sum = fn key -> metrics |> Map.values() |> Enum.map(&(&1[key] || 0)) |> Enum.sum() end

    per_table =
      Enum.map_join(Enum.sort(metrics), "; ", fn {table, m} ->
        "#{table} p50 #{us(m.p50_route_ns)} p99 #{us(m.p99_route_ns)}"
      end)

    [
      "router      core time per change (ShapeRouter.metrics, sampled): #{per_table}",
      "            #{fmt(sum.(:shapes_indexed))} shapes indexed, #{sum.(:shapes_scanned)} scanned; " <>
        "#{fmt(sum.(:changes_routed))} changes routed (updates' new rows included), " <>
        "#{fmt(sum.(:candidates))} candidates, #{fmt(sum.(:predicate_evaluations))} evaluations, " <>
        "unparseable rows #{sum.(:unparseable_rows)}, evaluation errors #{sum.(:evaluation_errors)}"
    ]
  end

  defp pct([], _q), do: 0

  defp pct(list, q) do
    sorted = Enum.sort(list)
    Enum.at(sorted, floor(q * (length(sorted) - 1)))
  end

  defp rss do
    [_size, resident | _] = "/proc/self/statm" |> File.read!() |> String.split()
    String.to_integer(resident) * 4096
  end

  defp secs(native), do: f1(System.convert_time_unit(native, :native, :microsecond) / 1.0e6)
  defp say(text), do: IO.puts("==> " <> text)
  defp us(ns), do: "#{:erlang.float_to_binary(ns / 1000, decimals: 1)} µs"
  defp f1(x), do: :erlang.float_to_binary(x / 1, decimals: 1)
  defp mib(bytes), do: f1(bytes / 1_048_576)

  defp fmt(n) when is_integer(n) do
    n
    |> Integer.to_string()
    |> String.reverse()
    |> String.replace(~r/(\d{3})(?=\d)/, "\\1,")
    |> String.reverse()
  end
end
