defmodule LsmIndex.Demo.Driver do
  @moduledoc """
  The end-to-end demo (`mix demo`, `./run demo`; not public API): PostgreSQL's logical
  replication in, every shape consistent out.

      PostgreSQL ─ pgoutput over START_REPLICATION (Replication) ─▶ Pgoutput ─▶ change tuples
        ─▶ Routing.route (ShapeRouter.route_many per table and transaction |
                          Filter.affected_shapes_many per transaction)
        ─▶ ShapeLog (each shape's rows; one durable frame + LSN per read)
        ─▶ status update: flush = that LSN                         (Stream: the loop)
      between reads: Churn (shapes added from a snapshot, shapes removed)
      at the end: Check (every live shape against SELECT id FROM t WHERE <shape>)

  A run: start a throwaway cluster (or attach to one: `--pg-dir`), create the schema and the
  publication, register the first shapes, then create the slot (`pgoutput`) — every change
  it will send is routed, and those shapes' rows come from the stream alone — start the
  writer (`LsmIndex.Demo.Workload`) and stream until the writer is done and the end marker
  the driver then emits has arrived; check; print the summary.

  With `--state-dir DIR` the routers are persistent (`DIR/router/<table>`) and the shapes'
  rows are logged in `DIR/shapes.log`; a driver started again on the same directory (after
  a SIGKILL, say) reopens the routers, rebuilds the rows from the log, makes the routers
  hold the shapes the log says are live, streams from the log's LSN and carries on (the
  writer resumes from its committed counters).

  Options (defaults): `--shapes` (100,000), `--seconds` (45: how long the writer runs),
  `--txns` (none: stop the writer at this many transactions), `--via` (`router`,
  `filter-lsm`, `filter-map`), `--seed` (1), `--users`/`--projects`/`--todos` (rows seeded:
  shapes/10, shapes/50, shapes/5), `--truncate-every` (10,000 transactions), `--rate`
  (1,000: transactions/s the writer holds at most; 0: as fast as it goes), `--state-dir`, `--pg-dir`,
  `--backlog` (the stream is read only once the writer is done: the pipeline draining a
  backlog, as after a restart), `--database` (`demo`), `--alter-at` (5,000: the writer's transaction that adds a column
  to `todos`; 0: none), `--add-rate` (10.0 shapes added per second while streaming, each
  from a snapshot), `--remove-rate` (half the add rate), `--progress-ms`
  (1,000), `--halt-before-confirm N` (tests: the VM kills itself after its N-th durable
  frame, before confirming it to the slot). Returns the exit status: 0 when every shape is consistent, 1 otherwise.
  """

  alias LsmIndex.Demo.{
    Check,
    Churn,
    Pgoutput,
    Postgres,
    Psql,
    Replication,
    Routing,
    Schema,
    ShapeLog,
    Shapes,
    Slot,
    Stream,
    Workload
  }

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
    alter_at: :integer,
    add_rate: :float,
    remove_rate: :float,
    progress_ms: :integer,
    halt_before_confirm: :integer,
    backlog: :boolean
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
      alter_at: if(opts[:alter_at] == 0, do: nil, else: opts[:alter_at] || 5_000),
      add_rate: opts[:add_rate] || 10.0,
      remove_rate: opts[:remove_rate] || (opts[:add_rate] || 10.0) / 2,
      progress_ms: opts[:progress_ms] || 1_000,
      halt_before_confirm: opts[:halt_before_confirm],
      backlog: opts[:backlog] || false,
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

  @kept [:via, :shapes, :seed, :users, :projects, :todos, :database, :truncate_every, :alter_at]

  defp run(pg, config) do
    slot = "lsm_demo_#{config.database}"

    unless config.resumed do
      admin = Psql.open(pg)
      Psql.run(admin, "CREATE DATABASE #{config.database};")
      Psql.close(admin)
    end

    session = Psql.open(pg, config.database)

    unless config.resumed do
      Psql.run(session, Schema.ddl())
      Psql.run(session, Slot.publication_ddl(Schema.names()))
    end

    shapes = Shapes.generate(config.shapes, config.seed, config.users, config.projects)
    {routing, build} = build_routing(config, shapes, Schema.columns_now(session))

    unless config.resumed do
      Slot.create(session, slot)

      if config.state_dir do
        meta = Path.join(config.state_dir, "meta")
        File.write!(meta <> ".tmp", :erlang.term_to_binary(Map.take(config, @kept)), [:sync])
        File.rename!(meta <> ".tmp", meta)
      end
    end

    log = ShapeLog.open(config.state_dir && Path.join(config.state_dir, "shapes.log"))
    churn = Churn.new(config, List.to_tuple(shapes), log)
    routing = if config.resumed, do: Churn.reconcile(routing, churn, log), else: routing
    start = resume_position(session, slot, log)

    if config.resumed,
      do: say("resumed: #{log.frames} durable frames, up to #{Slot.format_lsn(log.lsn)}")

    conn = Replication.connect(pg, config.database)
    conn = Replication.start(conn, slot, Slot.publication(), start, messages: true)
    # the slot catches up with the log at once (a crash may have come before the confirmation)
    :ok = Replication.status_update(conn, log.lsn, log.lsn, log.lsn)

    workload =
      Workload.start_link(pg, config.database,
        seed: config.seed,
        users: config.users,
        projects: config.projects,
        todos: config.todos,
        txns: config.txns,
        seconds: config.seconds,
        truncate_every: config.truncate_every,
        rate: config.rate,
        alter_at: config.alter_at
      )

    stats =
      Stream.run(%{
        conn: conn,
        session: session,
        routing: routing,
        log: log,
        churn: churn,
        config: config,
        workload: workload
      })

    Replication.close(stats.conn)
    live = Churn.live(stats.churn, stats.log)
    say("checking #{fmt(length(live))} shapes against PostgreSQL")
    {check_us, check} = :timer.tc(fn -> Check.run(session, live, stats.log) end)
    summary(config, build, stats, check, check_us, Routing.metrics(stats.routing))
    stray = ShapeLog.stray(stats.log)
    ShapeLog.close(stats.log)
    Routing.close(stats.routing)
    Psql.close(session)
    if check.missing == 0 and check.extra == 0 and stray == 0, do: 0, else: 1
  end

  defp build_routing(config, shapes, columns) do
    path = config.state_dir && Path.join(config.state_dir, "router")
    if path, do: File.mkdir_p!(path)
    rss0 = rss()
    heap0 = :erlang.memory(:total)
    t0 = System.monotonic_time(:millisecond)
    {routing, reopened} = Routing.new(config.via, shapes, path, columns)
    ms = System.monotonic_time(:millisecond) - t0
    verb = if reopened, do: "reopened", else: "registered"
    say("#{verb} #{fmt(config.shapes)} shapes (#{config.via}) in #{ms} ms")
    {routing, %{ms: ms, rss: rss() - rss0, heap: :erlang.memory(:total) - heap0, verb: verb}}
  end

  # Where the stream resumes: the log's LSN. The slot's confirmed position is at it, or
  # behind it after a crash between a durable frame and its confirmation (then the first
  # status update moves it); it is never ahead of a log that has frames.
  defp resume_position(session, slot, log) do
    confirmed = Slot.confirmed(session, slot)

    cond do
      log.lsn == 0 ->
        0

      log.lsn > confirmed ->
        say(
          "the slot (#{Slot.format_lsn(confirmed)}) is behind the durable shape log: " <>
            "confirmed up to #{Slot.format_lsn(log.lsn)}"
        )

        log.lsn

      log.lsn == confirmed ->
        log.lsn

      true ->
        raise "the slot is past the durable shape log: confirmed before durable"
    end
  end

  defp summary(config, build, stats, check, check_us, metrics) do
    churn = stats.churn
    {clients_busy, _ops} = ShapeLog.clients_work(stats.log)
    wall = max(stats.finished - stats.started, 1) / 1000
    route_s = max(stats.route_total, 1) / 1.0e9

    busy_s =
      max(wall - System.convert_time_unit(stats.split.wait, :native, :microsecond) / 1.0e6, 0.001)

    consistent = check.missing == 0 and check.extra == 0 and ShapeLog.stray(stats.log) == 0

    lines = [
      "",
      "== lsm_index end to end: #{fmt(config.shapes)} shapes via #{config.via}" <>
        if(config.resumed, do: " (resumed after a restart)", else: "") <> " ==",
      "stream      #{fmt(stats.txns)} transactions, #{fmt(stats.changes)} changes " <>
        "(#{stats.truncates} truncates) decoded and routed in #{f1(wall)} s: " <>
        "#{fmt(round(stats.txns / wall))} txn/s, #{fmt(round(stats.changes / wall))} changes/s " <>
        "end to end, at the writer's pace (#{secs(stats.split.wait)} s waiting for the stream)",
      "pipeline    #{fmt(round(stats.changes / busy_s))} changes/s while it had work (the wall " <>
        "time less the waiting: #{f1(busy_s)} s) = #{f2(stats.changes / busy_s / (stats.changes / route_s))}x " <>
        "the routing calls alone",
      "routing     #{fmt(round(stats.txns / route_s))} txn/s, #{fmt(round(stats.changes / route_s))} " <>
        "changes/s in the routing calls alone (#{f1(route_s)} s in all, each update's " <>
        "kept shapes included)",
      "route time  per transaction p50 #{us(pct(stats.route_ns, 0.5))}, p99 " <>
        "#{us(pct(stats.route_ns, 0.99))}; per change (the call / its changes) p50 " <>
        "#{us(pct(stats.per_change_ns, 0.5))}, p99 #{us(pct(stats.per_change_ns, 0.99))}",
      "time split  waiting for the stream #{secs(stats.split.wait)} s (#{fmt(stats.reads)} " <>
        "reads), decoding #{secs(stats.split.decode)} s, " <>
        "routing #{secs(stats.split.route)} s (the calls #{f1(stats.route_total / 1.0e9)} s), " <>
        "queueing the shape log's ops " <>
        "#{secs(stats.split.apply)} s, durable + confirm #{secs(stats.split.durable)} s " <>
        "(#{fmt(stats.commits)} frames), adding and removing shapes #{secs(stats.split.churn)} s",
      "decoder     pgoutput: #{fmt(Pgoutput.toast_fills(stats.decoder))} unchanged TOASTed " <>
        "values of updates taken from the old row; columns learned while streaming: " <>
        "#{learned(stats.routing)}",
      "shapes      #{fmt(churn.added_run)} added while streaming (#{fmt(churn.snapshot_rows)} " <>
        "rows from their snapshots, #{churn.rerouted} ops routed again for them), " <>
        "#{fmt(churn.removed_run)} removed; #{ShapeLog.stray(stats.log)} ops reached a removed shape"
    ]

    lines = lines ++ router_lines(metrics)

    lines =
      lines ++
        [
          "memory      #{build.verb} shapes in #{build.ms} ms: VM resident #{signed_mib(build.rss)} MiB, " <>
            "BEAM heap #{signed_mib(build.heap)} MiB; now resident #{mib(rss())} MiB",
          "clients     #{fmt(stats.ops)} shape-log entries, applied by the clients' process in " <>
            "#{secs(clients_busy)} s beside the stream; #{fmt(ShapeLog.size(stats.log))} " <>
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
        "#{fmt(sum.(:changes_routed))} changes routed, " <>
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
  defp f2(x), do: :erlang.float_to_binary(x / 1, decimals: 2)

  # the columns the routing knows beyond the schema as created: "todos.tag" or "none"
  defp learned(routing) do
    names =
      for table <- Schema.names(),
          {name, _} <- Routing.columns(routing, table) -- Schema.columns(table),
          do: "#{table}.#{name}"

    if names == [], do: "none", else: Enum.join(names, ", ")
  end

  defp us(ns), do: "#{:erlang.float_to_binary(ns / 1000, decimals: 1)} µs"
  defp f1(x), do: :erlang.float_to_binary(x / 1, decimals: 1)
  defp mib(bytes), do: f1(bytes / 1_048_576)
  # a growth: +x, or -x when a collection made it shrink
  defp signed_mib(bytes) when bytes < 0, do: "-" <> mib(-bytes)
  defp signed_mib(bytes), do: "+" <> mib(bytes)

  defp fmt(n), do: Stream.fmt(n)
end
