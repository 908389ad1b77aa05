# One memory reading of `mix bench --only subquery` (bench/subquery.exs runs each in a VM of
# its own: freed memory a VM keeps would be reused by the next reading and hide its growth).
# Prints `RESULT <base64 of a term>`: the VM's RSS growth once it holds still after each
# step, beside the router's own accounting (`view_metrics/1`) or the ETS table's size.
#
#   mix run bench/subquery_memory.exs shared TYPE VALUES SHAPES SAME SECOND OVERLAY_LIMIT
#     one view of VALUES projects (TYPE int8 | uuid) seeded by shape 0, SHAPES - 1 more
#     shapes attached with :current, then SAME shapes passing the same VALUES rows again,
#     then (SECOND 1) a second view of VALUES other values
#   mix run bench/subquery_memory.exs distinct KIND USERS PER DOMAIN OVERLAY_LIMIT
#     one view per user, USERS shapes: KIND values (PER projects of 1..DOMAIN each), empty
#     (no rows: the registration control), disjoint (PER projects no other user has)
#   mix run bench/subquery_memory.exs ets TYPE KIND SHAPES VALUES
#     an ordered_set of {{shape, value}} rows (the pair is the key): KIND shared (SHAPES x the same VALUES values)
#     or distinct (SHAPES users x VALUES projects of 1..DOMAIN, DOMAIN = the 5th argument)
#
# OVERLAY_LIMIT 0 is the default `LsmIndex` configuration.
Code.require_file("bench/report.exs")
Code.require_file("bench/subquery_workload.exs")

defmodule LsmIndex.Bench.SubqueryMemory do
  @moduledoc false
  import LsmIndex.Bench.Report, only: [stable_memory: 0, settled_memory: 0, in_process: 1]
  alias LsmIndex.Bench.SubqueryWorkload, as: W
  alias LsmIndex.ShapeRouter

  def run(["shared", type, values, shapes, same, second, limit]) do
    type = type(type)
    [values, shapes, same, second, limit] = ints([values, shapes, same, second, limit])
    second? = second == 1
    r = W.router(type, index_opts(limit))
    before = memory().rss

    seed_us =
      in_process(fn ->
        rows = for i <- 1..values, do: W.text(i, type)
        {us, :ok} = :timer.tc(fn -> W.add!(r, 0, 0, 1, rows) end)
        us
      end)

    seeded = reading(r, before)

    {attach_us, _} =
      :timer.tc(fn -> for id <- 1..(shapes - 1)//1, do: W.add!(r, id, 0, 1, :current) end)

    attached = reading(r, before)

    same_us =
      in_process(fn ->
        rows = for i <- 1..values, do: W.text(i, type)

        for k <- 1..same//1 do
          {us, :ok} = :timer.tc(fn -> W.add!(r, shapes - 1 + k, 0, 1, rows) end)
          us
        end
      end)

    again = if same > 0, do: reading(r, before), else: attached

    # a second view of as many values (user 2, values no other view has): its marginal
    # cost, without what the first large seed left behind
    second =
      if second? do
        in_process(fn ->
          rows = for i <- (values + 1)..(2 * values), do: W.text(i, type)
          W.add!(r, shapes + same, 0, 2, rows)
        end)

        reading(r, before)
      end

    %{
      second: second,
      seed_s: seed_us / 1.0e6,
      attach_us: attach_us / max(shapes - 1, 1),
      same_s: Enum.map(same_us, &(&1 / 1.0e6)),
      seeded: seeded,
      attached: attached,
      same: again
    }
  end

  def run(["distinct", kind, users, per, domain, limit]) do
    [users, per, domain, limit] = ints([users, per, domain, limit])
    r = W.router(:int8, index_opts(limit))
    before = memory().rss

    build_us =
      in_process(fn ->
        {us, _} =
          :timer.tc(fn ->
            for {u, projects} <- W.member_projects(users, per, domain) do
              rows =
                case kind do
                  "values" -> Enum.map(projects, &W.text(&1, :int8))
                  "empty" -> []
                  "disjoint" -> for j <- 1..per, do: W.text((u - 1) * per + j, :int8)
                end

              W.add!(r, u, 0, u, rows)
            end
          end)

        us
      end)

    Map.put(reading(r, before), :build_s, build_us / 1.0e6)
  end

  def run(["ets", type, kind, shapes, values, domain]) do
    type = type(type)
    [shapes, values, domain] = ints([shapes, values, domain])
    before = memory().rss
    t = :ets.new(:subquery_bench, [:ordered_set, :public])

    {us, _} =
      :timer.tc(fn ->
        case kind do
          "shared" ->
            for s <- 1..shapes, v <- 1..values, do: :ets.insert(t, {{s, W.ets_value(v, type)}})

          "distinct" ->
            for {u, projects} <- W.member_projects(shapes, values, domain),
                p <- projects,
                do: :ets.insert(t, {{u, W.ets_value(p, type)}})
        end
      end)

    rss = memory().rss - before

    %{
      rss: rss,
      rows: :ets.info(t, :size),
      ets_bytes: :ets.info(t, :memory) * :erlang.system_info(:wordsize),
      build_s: us / 1.0e6
    }
  end

  # RSS growth since `before` once still, and the router's accounting then
  defp reading(r, before) do
    :ok = ShapeRouter.wait_idle(r)
    rss = memory().rss - before
    vm = W.view_metrics(r)

    %{
      rss: rss,
      index_bytes: W.index_bytes(vm),
      views: vm.views,
      attachments: vm.attachments,
      diff_entries: vm.diff_entries,
      view_index: Map.take(vm.view_index, [:keys, :overlay_bytes, :segment_bytes, :segments])
    }
  end

  # `--quick` readings (SUBQUERY_BENCH_SETTLE=once) read once after 1 s idle, not until RSS
  # holds still: a smoke check, faster and noisier
  defp memory do
    if System.get_env("SUBQUERY_BENCH_SETTLE") == "once",
      do: settled_memory(),
      else: stable_memory()
  end

  defp index_opts(0), do: []
  defp index_opts(limit), do: [overlay_limit: limit]

  defp type("int8"), do: :int8
  defp type("uuid"), do: :uuid

  defp ints(args), do: Enum.map(args, &String.to_integer/1)
end

result = LsmIndex.Bench.SubqueryMemory.run(System.argv())
# this VM's CPU ticks (utime + stime): the parent's account of the machine's use
[_, stat] = String.split(File.read!("/proc/self/stat"), ") ", parts: 2)

ticks =
  stat |> String.split() |> Enum.slice(11, 2) |> Enum.map(&String.to_integer/1) |> Enum.sum()

result = Map.put(result, :cpu_ticks, ticks)
IO.puts("RESULT " <> Base.encode64(:erlang.term_to_binary(result)))
