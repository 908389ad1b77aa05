defmodule LsmIndex.Bench.Subquery do
  @moduledoc """
  `mix bench --only subquery`: subquery shapes through `LsmIndex.ShapeRouter` over two tables
  (issue 23's targets, plan §7), every figure beside a baseline of the same run.

  Tables and shapes (`bench/subquery_workload.exs`): `memberships(user_id, project_id)` and
  `issues(id, project_id, status, priority, title)`; shapes `project_id IN (SELECT project_id
  FROM memberships WHERE user_id = $1) [AND …]` on `issues` (ten templates). Shapes with the
  same `$1` share one view.

  Sections (full size; `--quick`: 1/10 of it, six memory readings instead of twelve, each
  read once after 1 s idle instead of until RSS holds still — a smoke check, ~40 s):

    * **Memory**, each reading in a VM of its own (`bench/subquery_memory.exs`, started with
      `+MMmcs 0` so the BEAM hands freed carriers back at once and RSS holds still sooner):
      RSS growth once still (`Report.stable_memory/0`), beside the router's accounting
      (`view_metrics/1`: the view index's segments, overlays and counts).
      - *shared*: one view of 1M int8 values (and 1M uuids) seeded by one shape, 100k shapes
        attached with `:current`, then two more passing the same 1M rows (no diff), then a
        second view of 1M other values (its marginal cost); bytes per value (seed) and per
        shape (attachments: the registration of an outer shape, reported apart). Also
        with `overlay_limit: 1024`, so the view index's
        values are flushed into segments (by default 1M values over 64 lanes stay below a
        lane's 16,384-key overlay limit and are never flushed).
      - *distinct*: 100k views (one shape per user, `$1` = the user) × 10 projects of 10k
        (1M pairs); minus a control reading of the same 100k shapes with empty views, per
        pair; the control / 100k is the registration cost of a shape with a view of its
        own (outer shape + view + its inner WHERE). *Disjoint*: 10 values no other view has.
      - *ETS*, the host's design: an `ordered_set` of `{shape, value}` rows for the same
        pairs (as `{{shape, value}}`: the pair is the key; `:ets.info(t, :memory)` × word
        size, and RSS). For *shared*, 10^11 rows cannot be built: measured at 1 × 1M and
        100 × 10k rows and extrapolated per row, as the host's RFC does.
    * **Moves**: 10k users × 10 templates = 100k shapes over 10k views (10 projects of 10k
      each); `memberships` inserts (40%), deletes (40%) and updates of the project (20%) in
      transactions of 10 through `route_many(r, txn, moves: true)`: inner changes/s,
      moves/s, p50/p99 per transaction. Every change crosses (a new pair, a pair deleted):
      the moves are counted against that. *Fan-out*: one view shared by 100k shapes, an
      insert (100k move-ins) and a delete (100k move-outs) through `route_with_moves/2`,
      each timed on its own.
    * **Outer routes**: `issues` inserts (60%), updates (30%, a third of them changing the
      project) and deletes through `route_many/2` (no moves) on the 100k-shape router,
      transactions of 10: µs per change, per-transaction p50/p99, `route/2` per change
      p50/p99, the router's in-NIF p50/p99 and candidates per change (`metrics(r,
      issues)`). Three routers: templates whose only indexable conjunct is the subquery;
      the same with two templates carrying an equality on `status` (`status = 'open'`,
      `status IN ('open', 'late')`), which the router indexes before the view; and the
      baseline without views, each user's projects inlined as an IN list.

  Yardsticks measured in the same run and printed with the tables: an ETS `:set` hit at 1M
  keys (`:ets.lookup`, samples of 8 calls timed together), the memory probe of RESEARCH.md
  (`bench/mem_probe.c`, built with `cc`: random 8-byte reads of 1 GiB, dependent and
  independent), and the CPU other processes used during the run (from `/proc/stat`, less
  this VM's and its readings' own): above 10% of the machine, the results say they are
  provisional.
  """

  import LsmIndex.Bench.Report,
    only: [
      progress: 1,
      fmt_f: 2,
      fmt_int: 1,
      markdown: 2,
      in_process: 1,
      ets_hit_ns: 1,
      ets_yardstick: 1,
      mem_probe: 1
    ]

  alias LsmIndex.Bench.SubqueryWorkload, as: W
  alias LsmIndex.ShapeRouter

  @txn 10
  # another process's CPU above this share of the machine makes the figures provisional
  @busy_share 0.10

  defp sizes(true) do
    %{
      values: 100_000,
      shapes: 10_000,
      same: 1,
      second: 0,
      settle: "once",
      users: 10_000,
      per: 10,
      domain: 1_000,
      ets_split: {100, 1_000},
      extra_readings: false,
      move_users: 1_000,
      move_domain: 1_000,
      move_txns: 500,
      fanout: 10_000,
      crossings: 3,
      outer: 5_000,
      outer_equality: 500,
      singles: 2_000,
      ets_samples: 20_000,
      probe_reads: 1_000_000
    }
  end

  defp sizes(false) do
    %{
      values: 1_000_000,
      shapes: 100_000,
      same: 2,
      second: 1,
      settle: "stable",
      users: 100_000,
      per: 10,
      domain: 10_000,
      ets_split: {100, 10_000},
      extra_readings: true,
      move_users: 10_000,
      move_domain: 10_000,
      move_txns: 2_000,
      fanout: 100_000,
      crossings: 5,
      outer: 20_000,
      outer_equality: 1_000,
      singles: 5_000,
      ets_samples: 100_000,
      probe_reads: 4_000_000
    }
  end

  @doc "Changes per transaction of the moves and outer-route sections (`bench/plots.exs`)."
  def txn_size, do: @txn

  def run(opts) do
    quick = Keyword.fetch!(opts, :quick)
    machine = Keyword.fetch!(opts, :machine)
    s = sizes(quick)
    cpu0 = cpu_ticks()
    t0 = System.monotonic_time(:millisecond)

    header =
      "# mix bench#{if quick, do: " --quick", else: ""} --only subquery: subquery shapes " <>
        "(shared and distinct views, moves, outer routes)\n"

    IO.puts(header <> "\n" <> machine)

    progress("## yardsticks: an ETS :set hit at 1,000,000 keys, the memory probe")
    ets_hit = in_process(fn -> ets_hit_ns(s.ets_samples) end)
    {probe, probe_ticks} = mem_probe(s.probe_reads)
    yardsticks = yardsticks(ets_hit, probe)
    IO.puts(yardsticks)

    {memory, memory_ticks} = memory(s)
    IO.puts(memory)
    moves = moves(s, ets_hit)
    IO.puts(moves)

    seconds = (System.monotonic_time(:millisecond) - t0) / 1000
    machine_use = machine_use(cpu0, probe_ticks + memory_ticks, seconds)
    IO.puts(machine_use)

    Enum.join([header, machine, machine_use, yardsticks, memory, moves], "\n")
  end

  # -- yardsticks --

  defp yardsticks(ets_hit, probe) do
    probe_line =
      case probe do
        {:ok, dep, indep} ->
          "memory probe (1 GiB, random 8-byte reads): dependent #{fmt_f(dep, 1)} ns, " <>
            "independent #{fmt_f(indep, 1)} ns per read; an ETS hit = " <>
            "#{fmt_f(ets_hit / dep, 2)} dependent reads"

        {:error, why} ->
          "memory probe skipped: #{why}"
      end

    """
    Yardsticks (this run): #{ets_yardstick(ets_hit)}; #{probe_line}.
    """
  end

  # -- memory: one VM per reading --

  defp memory(s) do
    progress("## memory: one VM per reading")
    v = s.values
    {split_shapes, split_values} = s.ets_split

    readings =
      [
        {:shared_int, ["shared", "int8", v, s.shapes, s.same, s.second, 0]},
        {:ets_shared_int, ["ets", "int8", "shared", 1, v, 0]},
        {:ets_split_int, ["ets", "int8", "shared", split_shapes, split_values, 0]},
        {:distinct, ["distinct", "values", s.users, s.per, s.domain, 0]},
        {:control, ["distinct", "empty", s.users, s.per, s.domain, 0]},
        {:ets_distinct, ["ets", "int8", "distinct", s.users, s.per, s.domain]}
      ] ++
        if s.extra_readings do
          [
            {:shared_flushed, ["shared", "int8", v, s.shapes, 0, 0, 1_024]},
            {:shared_uuid, ["shared", "uuid", v, s.shapes, 0, 0, 0]},
            {:ets_shared_uuid, ["ets", "uuid", "shared", 1, v, 0]},
            {:ets_split_uuid, ["ets", "uuid", "shared", split_shapes, split_values, 0]},
            {:disjoint, ["distinct", "disjoint", s.users, s.per, s.domain, 0]},
            {:disjoint_flushed, ["distinct", "disjoint", s.users, s.per, s.domain, 1_024]}
          ]
        else
          []
        end

    results = Map.new(readings, fn {name, args} -> {name, reading(name, args, s.settle)} end)
    ticks = results |> Map.values() |> Enum.map(& &1.cpu_ticks) |> Enum.sum()
    {memory_tables(s, results), ticks}
  end

  defp reading(name, args, settle) do
    args = Enum.map(args, &to_string/1)
    progress("  #{name}: #{Enum.join(args, " ")}")
    flags = String.trim("#{System.get_env("ERL_FLAGS")} +MMmcs 0")

    env = [
      {"MIX_ENV", to_string(Mix.env())},
      {"ERL_FLAGS", flags},
      {"SUBQUERY_BENCH_SETTLE", settle}
    ]

    cmd = ["run", "--no-compile", "bench/subquery_memory.exs" | args]
    {out, status} = System.cmd("mix", cmd, env: env, stderr_to_stdout: true)

    case Regex.run(~r/^RESULT (\S+)$/m, out) do
      [_, b64] when status == 0 -> b64 |> Base.decode64!() |> :erlang.binary_to_term()
      _ -> raise "memory reading #{name} failed (exit #{status}):\n#{out}"
    end
  end

  defp memory_tables(s, r) do
    shared = shared_table(s, r)
    ets = ets_table(s, r)
    distinct = distinct_table(s, r)
    Enum.join([shared, ets, distinct, targets(s, r)], "\n")
  end

  defp shared_table(s, r) do
    rows =
      [{"int8", r.shared_int}] ++
        if(r[:shared_flushed], do: [{"int8, overlay_limit: 1024", r.shared_flushed}], else: []) ++
        if(r[:shared_uuid], do: [{"uuid", r.shared_uuid}], else: [])

    lines =
      for {name, x} <- rows do
        st = x.seeded.view_index
        attached = s.shapes - 1

        [
          name,
          fmt_f(x.seeded.rss / s.values, 1),
          fmt_f(x.seeded.index_bytes / s.values, 1),
          "#{fmt_int(st.keys)} keys: #{mib(st.overlay_bytes)} overlays, " <>
            "#{mib(st.segment_bytes)} in #{st.segments} segments",
          fmt_f((x.attached.rss - x.seeded.rss) / attached, 0),
          fmt_f((x.attached.index_bytes - x.seeded.index_bytes) / attached, 2),
          fmt_f(x.seed_s, 2),
          fmt_f(x.attach_us, 1),
          same_cell(x),
          second_cell(x, s.values)
        ]
      end

    columns = [
      "values",
      "B/value RSS",
      "B/value counted",
      "view index after wait_idle",
      "B/shape RSS (registration)",
      "B/shape counted (view index)",
      "seed s",
      "attach µs/shape",
      "same rows again: s each, RSS B, diff entries",
      "with a second view: B/value RSS / counted over both"
    ]

    """
    ## Memory: one view of #{fmt_int(s.values)} values shared by #{fmt_int(s.shapes)} shapes

    Shape 0 seeds the view (`subquery_values: [rows]`); shapes 1..#{fmt_int(s.shapes - 1)} \
    attach with `:current`. B/value: RSS growth after the seed / values (RSS) and the view \
    index's bytes / values (counted: `view_metrics/1`'s `view_index`, segments + overlays + \
    counts). B/shape: growth from the seed to the last attachment / attached shapes — the \
    registration of an outer shape (its compiled WHERE) plus its attachment; the view index \
    does not grow with shapes. "Same rows again": shapes passing the view's rows again \
    instead of `:current` (diff-free sharing: no diff entries when the rows equal the view; \
    the RSS they leave is what converting and comparing the rows left behind). "With a \
    second view": another view of as many other values seeded last; all growth since the \
    start / both views' values (past 16,384 keys a lane's overlay is frozen and flushed \
    into segments, which the default leaves undone at #{fmt_int(s.values)} values).

    #{markdown(columns, lines)}
    """
  end

  defp second_cell(%{second: nil}, _values), do: "–"

  defp second_cell(x, values) do
    st = x.second.view_index

    "#{fmt_f(x.second.rss / (2 * values), 1)} / " <>
      "#{fmt_f(x.second.index_bytes / (2 * values), 1)} (#{mib(st.overlay_bytes)} overlays, " <>
      "#{mib(st.segment_bytes)} in #{st.segments} segments)"
  end

  defp same_cell(%{same_s: []}), do: "–"

  defp same_cell(x) do
    n = length(x.same_s)

    "#{Enum.map_join(x.same_s, ", ", &fmt_f(&1, 2))}; " <>
      "#{fmt_int(div(x.same.rss - x.attached.rss, n))}; #{x.same.diff_entries}"
  end

  defp ets_table(s, r) do
    {split_shapes, split_values} = s.ets_split

    rows =
      [
        {"int8, 1 × #{fmt_int(s.values)}", r.ets_shared_int, r.shared_int},
        {"int8, #{split_shapes} × #{fmt_int(split_values)}", r.ets_split_int, r.shared_int}
      ] ++
        if r[:ets_shared_uuid] do
          [
            {"uuid, 1 × #{fmt_int(s.values)}", r.ets_shared_uuid, r.shared_uuid},
            {"uuid, #{split_shapes} × #{fmt_int(split_values)}", r.ets_split_uuid, r.shared_uuid}
          ]
        else
          []
        end

    lines =
      for {name, e, ours} <- rows do
        per_row = e.ets_bytes / e.rows
        # the host keeps a copy of the view per shape: shapes × values rows
        host_total = per_row * s.shapes * s.values
        ours_total = ours.attached.rss

        [
          name,
          fmt_int(e.rows),
          fmt_f(per_row, 1),
          fmt_f(e.rss / e.rows, 1),
          fmt_f(per_row * s.shapes / 1.0e6, 2),
          gib(host_total),
          mib(ours_total),
          fmt_int(round(host_total / ours_total))
        ]
      end

    columns = [
      "ETS ordered_set {shape, value}",
      "rows",
      "B/row (ETS memory)",
      "B/row RSS",
      "MB per shared value at #{fmt_int(s.shapes)} shapes (extrapolated)",
      "#{fmt_int(s.shapes)} shapes × #{fmt_int(s.values)} values (extrapolated)",
      "ours, RSS (after the last attachment)",
      "ETS / ours"
    ]

    """
    ### The host's design in the same run: ETS rows, extrapolated

    The host's subquery index holds one row per (shape, value) (RESEARCH.md; its RFC \
    measures the same way and extrapolates per row); here the smallest such row, \
    `{{shape, value}}` in an `ordered_set` (the pair is the key). 10^#{round(:math.log10(s.shapes * s.values))} \
    rows cannot be built: measured at the sizes below, then × shapes × values.

    #{markdown(columns, lines)}
    """
  end

  defp distinct_table(s, r) do
    pairs = s.users * s.per
    control = r.control
    ets = r.ets_distinct
    ets_row = ets.ets_bytes / ets.rows
    ets_rss = ets.rss / ets.rows

    rows =
      [{"#{s.per} of #{fmt_int(s.domain)} projects", r.distinct}] ++
        if(r[:disjoint], do: [{"disjoint (each value in one view)", r.disjoint}], else: []) ++
        if(r[:disjoint_flushed],
          do: [{"disjoint, overlay_limit: 1024", r.disjoint_flushed}],
          else: []
        )

    lines =
      for {name, x} <- rows do
        rss = (x.rss - control.rss) / pairs
        counted = (x.index_bytes - control.index_bytes) / pairs
        st = x.view_index

        [
          name,
          fmt_f(rss, 1),
          fmt_f(counted, 1),
          "#{fmt_int(st.keys)} keys: #{mib(st.overlay_bytes)} overlays, " <>
            "#{mib(st.segment_bytes)} in #{st.segments} segments",
          fmt_f(rss / ets_rss, 3),
          fmt_f(counted / ets_row, 3),
          fmt_f(x.build_s, 2)
        ]
      end

    columns = [
      "views of",
      "B/pair RSS",
      "B/pair counted",
      "view index after wait_idle",
      "× ETS (RSS)",
      "× ETS (counted)",
      "build s"
    ]

    """
    ## Memory: #{fmt_int(s.users)} distinct views × #{s.per} values (#{fmt_int(pairs)} pairs)

    One shape per user (`$1` = the user), each with a view of its own seeded with its \
    projects. B/pair: (RSS growth − the control's) / pairs, and the view index's bytes / \
    pairs (counted). The control: the same #{fmt_int(s.users)} shapes with empty views, \
    **#{fmt_int(round(control.rss / s.users))} B RSS per shape** — the registration of a \
    shape with a view of its own (its outer WHERE, the view's slot and its inner WHERE as a \
    shape of the view router), reported apart, not in the per-pair figures. The host's \
    `ordered_set` of the same #{fmt_int(ets.rows)} `{shape, value}` rows: \
    **#{fmt_f(ets_row, 1)} B/row** (ETS memory), #{fmt_f(ets_rss, 1)} B/row RSS.

    #{markdown(columns, lines)}
    """
  end

  defp targets(s, r) do
    x = r.shared_int
    rss = x.seeded.rss / s.values
    counted = x.seeded.index_bytes / s.values
    pairs = s.users * s.per
    d_rss = (r.distinct.rss - r.control.rss) / pairs
    d_counted = (r.distinct.index_bytes - r.control.index_bytes) / pairs
    ets = r.ets_distinct
    ratio_rss = d_rss / (ets.rss / ets.rows)
    ratio_counted = d_counted / (ets.ets_bytes / ets.rows)

    flushed =
      case r[:shared_flushed] do
        nil ->
          ""

        f ->
          "; with `overlay_limit: 1024` (values flushed into segments) " <>
            "#{fmt_f(f.seeded.rss / s.values, 1)} RSS / " <>
            "#{fmt_f(f.seeded.index_bytes / s.values, 1)} counted"
      end

    quick =
      if s.settle == "once",
        do:
          "\n(`--quick`: 1/10 scale, RSS read once after 1 s idle, not until still: growths " <>
            "of a few MB are noise here — the verdicts are the full run's.)\n",
        else: ""

    second =
      case x[:second] do
        nil ->
          ""

        sv ->
          "; with a second view (#{fmt_int(2 * s.values)} values, overlays flushing) " <>
            "#{fmt_f(sv.rss / (2 * s.values), 1)} RSS / " <>
            "#{fmt_f(sv.index_bytes / (2 * s.values), 1)} counted"
      end

    """
    ### Against issue 23's targets
    #{quick}
    - **≤ 20 B per shared value** (int8, #{fmt_int(s.values)} values): \
    #{fmt_f(rss, 1)} B RSS, #{fmt_f(counted, 1)} B counted#{flushed}#{second} — \
    #{verdict(rss <= 20, counted <= 20)} (at the default configuration).
    - **Distinct views ≤ 1/10 of the ETS table** (#{fmt_int(pairs)} pairs): \
    #{fmt_f(ratio_rss, 3)}× by RSS, #{fmt_f(ratio_counted, 3)}× counted — \
    #{verdict(ratio_rss <= 0.1, ratio_counted <= 0.1)}.
    - Registration, apart: #{fmt_f((x.attached.rss - x.seeded.rss) / (s.shapes - 1), 0)} B \
    RSS per outer shape attached to a shared view; \
    #{fmt_f(r.control.rss / s.users, 0)} B per shape with a view of its own.
    """
  end

  defp verdict(true, true), do: "met"
  defp verdict(false, false), do: "**not met**"
  defp verdict(true, false), do: "met by RSS, not by the counted bytes"
  defp verdict(false, true), do: "**not met by RSS** (met by the counted bytes)"

  # -- moves and outer routes: one router of users × templates --

  defp moves(s, ets_hit) do
    shapes = s.move_users * W.templates()
    progress("## moves and outer routes: #{fmt_int(shapes)} shapes")
    {moves, outer} = in_process(fn -> moves_and_routes(s) end)
    progress("## outer routes with equality templates")
    equality = in_process(fn -> equality_routes(s, :equality) end)
    progress("## outer routes with the projects inlined (no subquery)")
    inlist = in_process(fn -> equality_routes(s, :inlist) end)
    progress("## fan-out: one view shared by #{fmt_int(s.fanout)} shapes")
    fanout = in_process(fn -> fanout(s) end)

    Enum.join(
      [
        moves_table(s, moves, ets_hit),
        fanout_table(fanout, ets_hit),
        outer_table(s, [{"view", outer}, {"equality", equality}, {"IN list", inlist}], ets_hit)
      ],
      "\n"
    )
  end

  defp moves_and_routes(s) do
    r = W.router(:int8)
    members = s.move_users |> W.member_projects(s.per, s.move_domain) |> Map.new()
    progress("  registering #{fmt_int(s.move_users * W.templates())} shapes")

    {register_us, _} =
      :timer.tc(fn ->
        for u <- 1..s.move_users, t <- 0..(W.templates() - 1) do
          rows = if t == 0, do: Enum.map(members[u], &W.text(&1, :int8)), else: :current
          W.add!(r, (u - 1) * W.templates() + t, t, u, rows)
        end
      end)

    :ok = ShapeRouter.wait_idle(r)
    vm = W.view_metrics(r)
    {txns, expected} = inner_stream(s, members)
    progress("  #{fmt_int(length(txns))} membership transactions of #{@txn}")

    {times, moved} =
      Enum.map_reduce(txns, 0, fn txn, moved ->
        t0 = System.monotonic_time(:nanosecond)
        result = ShapeRouter.route_many(r, txn, moves: true)
        t = System.monotonic_time(:nanosecond) - t0
        {t, moved + Enum.sum(Enum.map(result, fn {_ids, moves} -> length(moves) end))}
      end)

    if moved != expected,
      do: raise("the membership stream made #{moved} moves, #{expected} expected")

    :ok = ShapeRouter.wait_idle(r)
    moves = %{register_s: register_us / 1.0e6, views: vm.views, times: times, moved: moved}
    {moves, outer_routes(s, r, s.outer)}
  end

  # the same users' shapes from the :equality templates, or (:inlist) with each user's
  # projects inlined instead of the subquery; no membership stream
  defp equality_routes(s, set) do
    r = W.router(:int8)
    members = s.move_users |> W.member_projects(s.per, s.move_domain) |> Map.new()

    for u <- 1..s.move_users, t <- 0..(W.templates() - 1) do
      id = (u - 1) * W.templates() + t

      case set do
        :inlist ->
          W.add_inlist!(r, id, t, members[u])

        :equality ->
          rows = if t == 0, do: Enum.map(members[u], &W.text(&1, :int8)), else: :current
          W.add!(r, id, t, u, rows, :equality)
      end
    end

    :ok = ShapeRouter.wait_idle(r)
    outer_routes(s, r, if(set == :inlist, do: s.outer, else: s.outer_equality))
  end

  # Transactions of membership changes, every one a crossing: an insert of a pair the user
  # does not have (its 10 shapes move in), a delete of one it has (10 move out), an update of
  # its project (10 out, 10 in). {txns, the moves they must make}
  defp inner_stream(s, members) do
    n = s.move_txns * @txn
    members = Map.new(members, fn {u, ps} -> {u, MapSet.new(ps)} end)

    {changes, {_, _, expected}} =
      Enum.map_reduce(1..n, {members, W.rand_state(), 0}, fn _, {members, st, expected} ->
        {u, st} = :rand.uniform_s(s.move_users, st)
        {op, st} = :rand.uniform_s(10, st)
        have = members[u]

        {fresh, st} = fresh(have, s.move_domain, st)
        {k, st} = :rand.uniform_s(max(MapSet.size(have), 1), st)
        old = have |> MapSet.to_list() |> Enum.at(k - 1)

        {change, have, moves} =
          cond do
            op <= 4 or old == nil ->
              {{:insert, W.memberships(), row(u, fresh)}, MapSet.put(have, fresh), 1}

            op <= 8 ->
              {{:delete, W.memberships(), row(u, old)}, MapSet.delete(have, old), 1}

            true ->
              {{:update, W.memberships(), row(u, old), row(u, fresh)},
               have |> MapSet.delete(old) |> MapSet.put(fresh), 2}
          end

        {change, {Map.put(members, u, have), st, expected + moves * W.templates()}}
      end)

    {Enum.chunk_every(changes, @txn), expected}
  end

  defp fresh(have, domain, st) do
    {p, st} = :rand.uniform_s(domain, st)
    if MapSet.member?(have, p), do: fresh(have, domain, st), else: {p, st}
  end

  defp row(u, p), do: %{"user_id" => Integer.to_string(u), "project_id" => Integer.to_string(p)}

  defp moves_table(s, m, ets_hit) do
    changes = s.move_txns * @txn
    total_s = Enum.sum(m.times) / 1.0e9
    sorted = Enum.sort(m.times)

    lines = [
      [
        fmt_int(s.move_users * W.templates()),
        fmt_int(m.views),
        fmt_f(m.register_s, 2),
        fmt_int(changes),
        fmt_int(round(changes / total_s)),
        fmt_int(round(m.moved / total_s)),
        fmt_f(m.moved / changes, 1),
        fmt_f(percentile(sorted, 0.5) / 1000, 1),
        fmt_f(percentile(sorted, 0.99) / 1000, 1),
        fmt_f(total_s * 1.0e9 / changes / ets_hit, 2)
      ]
    ]

    columns = [
      "shapes",
      "views",
      "register s",
      "inner changes",
      "inner changes/s",
      "moves/s",
      "moves/change",
      "txn p50 µs",
      "txn p99 µs",
      "per change × ETS hit"
    ]

    """
    ## Moves: `memberships` changes through `route_many(r, txn, moves: true)`

    #{fmt_int(s.move_users)} users × #{W.templates()} templates, each user in #{s.per} of \
    #{fmt_int(s.move_domain)} projects; transactions of #{@txn}: inserts of new pairs \
    (40%), deletes (40%), project updates (20%), every change a crossing (10 moves; an \
    update 20) — the moves reported were counted against that. A move is a tuple per shape.

    #{markdown(columns, lines)}
    """
  end

  defp fanout(s) do
    r = W.router(:int8)
    seed = for p <- 1..s.per, do: W.text(p, :int8)
    W.add!(r, 0, 0, 0, seed)
    for id <- 1..(s.fanout - 1), do: W.add!(r, id, rem(id, W.templates()), 0, :current)
    :ok = ShapeRouter.wait_idle(r)

    times =
      for k <- 1..s.crossings do
        change = row(0, 1_000_000 + k)
        ins = cross(r, {:insert, W.memberships(), change}, s.fanout)
        del = cross(r, {:delete, W.memberships(), change}, s.fanout)
        {ins, del}
      end

    {ins, del} = Enum.unzip(times)
    %{shapes: s.fanout, ins: Enum.sort(ins), del: Enum.sort(del)}
  end

  defp cross(r, change, shapes) do
    :erlang.garbage_collect()
    t0 = System.monotonic_time(:nanosecond)
    {[], moves} = ShapeRouter.route_with_moves(r, change)
    t = System.monotonic_time(:nanosecond) - t0
    if length(moves) != shapes, do: raise("#{length(moves)} moves, #{shapes} expected")
    t
  end

  defp fanout_table(f, ets_hit) do
    ins = percentile(f.ins, 0.5)
    del = percentile(f.del, 0.5)
    per = (ins + del) / 2 / f.shapes

    lines = [
      [
        fmt_int(f.shapes),
        "#{fmt_f(ins / 1.0e6, 1)} (#{fmt_f(hd(f.ins) / 1.0e6, 1)}–#{fmt_f(List.last(f.ins) / 1.0e6, 1)})",
        "#{fmt_f(del / 1.0e6, 1)} (#{fmt_f(hd(f.del) / 1.0e6, 1)}–#{fmt_f(List.last(f.del) / 1.0e6, 1)})",
        fmt_f(per, 0),
        fmt_f(per / ets_hit, 2)
      ]
    ]

    columns = [
      "shapes on the view",
      "insert (all move in) ms, median (min–max)",
      "delete (all move out) ms",
      "ns per moved shape",
      "× ETS hit per moved shape"
    ]

    """
    ### Fan-out: one crossing of a view shared by #{fmt_int(f.shapes)} shapes

    One `route_with_moves/2` each (#{length(f.ins)} inserts of a new project for the view's \
    user, each deleted again), timed alone; the result is a list of #{fmt_int(f.shapes)} \
    move tuples.

    #{markdown(columns, lines)}
    """
  end

  # -- outer routes on the same router --

  defp outer_routes(s, r, n) do
    changes = outer_stream(n, s.move_domain)
    txns = Enum.chunk_every(changes, @txn)
    progress("  #{fmt_int(length(changes))} issues changes: an untimed pass, a timed one")
    answers = Enum.flat_map(txns, &ShapeRouter.route_many(r, &1))
    matched = Enum.sum(Enum.map(answers, &length/1)) / length(answers)
    :erlang.garbage_collect()

    times =
      for txn <- txns do
        t0 = System.monotonic_time(:nanosecond)
        ShapeRouter.route_many(r, txn)
        System.monotonic_time(:nanosecond) - t0
      end

    singles =
      for change <- Enum.take(changes, s.singles) do
        t0 = System.monotonic_time(:nanosecond)
        ShapeRouter.route(r, change)
        System.monotonic_time(:nanosecond) - t0
      end

    m = ShapeRouter.metrics(r, W.issues())

    %{
      changes: length(changes),
      times: times,
      singles: Enum.sort(singles),
      matched: matched,
      metrics: m
    }
  end

  # inserts 60%, updates 30% (a third change the project), deletes 10%, projects of the
  # users' domain
  defp outer_stream(n, domain) do
    {changes, _} =
      Enum.map_reduce(1..n, :rand.seed_s(:exsss, {7, 7, 7}), fn i, st ->
        {old, st} = W.issue(i, domain, :int8, st)
        {op, st} = :rand.uniform_s(10, st)

        cond do
          op <= 6 ->
            {{:insert, W.issues(), old}, st}

          op <= 9 ->
            {new, st} = W.issue(i, domain, :int8, st)
            {move, st} = :rand.uniform_s(3, st)
            new = if move == 1, do: new, else: %{new | "project_id" => old["project_id"]}
            {{:update, W.issues(), old, new}, st}

          true ->
            {{:delete, W.issues(), old}, st}
        end
      end)

    changes
  end

  defp outer_table(s, rows, ets_hit) do
    lines =
      for {set, o} <- rows do
        per_change_ns = Enum.sum(o.times) / o.changes
        sorted = Enum.sort(o.times)
        m = o.metrics

        [
          set,
          fmt_int(o.changes),
          fmt_f(per_change_ns / 1000, 2),
          fmt_f(per_change_ns / ets_hit, 1),
          "#{fmt_f(percentile(sorted, 0.5) / 1000, 1)} / " <>
            fmt_f(percentile(sorted, 0.99) / 1000, 1),
          "#{fmt_f(percentile(o.singles, 0.5) / 1000, 2)} / " <>
            fmt_f(percentile(o.singles, 0.99) / 1000, 2),
          "#{fmt_f(m.p50_route_ns / 1000, 2)} / #{fmt_f(m.p99_route_ns / 1000, 2)}",
          fmt_f(m.candidates_per_change, 1),
          fmt_f(o.matched, 1),
          fmt_f(per_change_ns / max(m.candidates_per_change, 1.0e-9), 0)
        ]
      end

    columns = [
      "templates",
      "changes",
      "µs/change (route_many)",
      "× ETS hit",
      "txn p50 / p99 µs",
      "route/2 p50 / p99 µs",
      "in-NIF p50 / p99 µs",
      "candidates/change",
      "matched/change",
      "ns per candidate"
    ]

    equality =
      Enum.map_join(W.equality_templates(), ", ", fn {t, sql} ->
        "`…#{sql}` for template #{t}"
      end)

    """
    ## Outer routes: `issues` changes through `route_many/2` (no moves), #{fmt_int(s.move_users * W.templates())} shapes

    *view*: the router of the moves section (#{fmt_int(s.move_users * W.templates())} \
    shapes over #{fmt_int(s.move_users)} views, after its membership stream), every shape \
    found through its view (~#{s.per * W.templates()} candidates per row: a project is in \
    ~#{s.per} users' views × #{W.templates()} templates). *equality*: the same shapes with \
    #{equality}, which the router's plan indexes by `status` before the view (plan §4.6: \
    any equality before a view plan), so every `open` row meets all \
    #{fmt_int(s.move_users)} shapes of both templates (no membership stream; fewer \
    changes). *IN list*: the baseline without views — the *view* shapes with each user's \
    initial projects inlined (`project_id IN (3, 9, …) AND …`: indexed under each \
    project, the same candidates). Changes: issues inserts (60%), updates (30%, a third move the issue to \
    another project) and deletes (10%) over the #{fmt_int(s.move_domain)} projects, \
    transactions of #{@txn}, routed once untimed, then timed. `route/2`: the first \
    #{fmt_int(s.singles)} changes (at most) one call each, timed alone. In-NIF: the \
    router's own per-change histogram (upper bounds, ≤ 25% over) and candidates per change \
    (`metrics(r, issues)`: an update counts its old and new rows).

    #{markdown(columns, lines)}
    """
  end

  # -- the machine's use during the run --

  # this VM's CPU ticks so far, and the machine's busy and total ticks
  defp cpu_ticks do
    [_, rest] = String.split(File.read!("/proc/self/stat"), ") ", parts: 2)
    fields = String.split(rest)
    own = Enum.slice(fields, 11, 4) |> Enum.map(&String.to_integer/1) |> Enum.sum()

    ["cpu" | all] = File.read!("/proc/stat") |> String.split("\n") |> hd() |> String.split()

    [user, nice, system, idle, iowait | more] = Enum.map(all, &String.to_integer/1)
    # guest time is already in user
    rest = Enum.take(more, 3)
    total = user + nice + system + idle + iowait + Enum.sum(rest)
    %{own: own, busy: total - idle - iowait, total: total}
  end

  defp machine_use(cpu0, children_ticks, seconds) do
    now = cpu_ticks()
    total = now.total - cpu0.total
    others = now.busy - cpu0.busy - (now.own - cpu0.own) - children_ticks
    share = max(others, 0) / max(total, 1)
    cores = :erlang.system_info(:logical_processors)
    load = File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" ")

    verdict =
      if share > @busy_share,
        do:
          "\n**Provisional: taken on a shared machine** (other processes used more than " <>
            "#{round(@busy_share * 100)}% of it during the run); rerun on an idle machine " <>
            "before quoting these figures.\n",
        else: ""

    """
    The run took #{fmt_f(seconds, 0)} s; other processes used #{fmt_f(share * 100, 0)}% of the \
    #{cores} cores meanwhile (`/proc/stat` busy time less this VM's and its readings' own); \
    load average at the end #{load}.
    #{verdict}
    """
  end

  # -- helpers --

  defp percentile(sorted, p) when is_list(sorted),
    do: Enum.at(sorted, min(round(p * length(sorted)), length(sorted) - 1))

  defp mib(bytes), do: "#{fmt_f(bytes / 1_048_576, 1)} MiB"
  defp gib(bytes), do: "#{fmt_f(bytes / 1_073_741_824, 0)} GiB"
end
