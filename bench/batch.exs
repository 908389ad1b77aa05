defmodule LsmIndex.Bench.Batch do
  @moduledoc """
  `mix bench --only batch` (issue 25): lookups at the memory limit. One fully compacted
  `LsmIndex` per size (1M and 10M keys; `--quick` 100k), every figure beside the limits of
  the same run: the memory probe (`bench/mem_probe.c`: random 8-byte reads of 1 GiB, each
  depending on the last, and independent) and an ETS `:set` hit.

  Rows, ns per key (p50 over calls, keys in random order, all hits unless said):

    * `lookup/2 hit`, `lookup/2 miss` - one key per call: × the dependent read (the chain
      a single lookup cannot avoid) and × the ETS hit
    * `lookup_many/2` of 1, 8, 32, 256 keys - × the independent read (what a batch's
      staged probes can reach) and × the ETS hit
    * `lookup_many_packed/2` of 256 keys packed beforehand - the NIF reads the keys in place

  Its table goes to `bench/results/batch.md`, beside `batch.svg` (keys per second against
  keys per call, one line per size).
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

  alias LsmIndex.Bench.{Equality, Plot}

  @batches [1, 8, 32, 256]

  def run(opts) do
    quick = Keyword.fetch!(opts, :quick)
    sizes = if quick, do: [100_000], else: [1_000_000, 10_000_000]
    calls = if quick, do: 2_000, else: 20_000

    header =
      "# mix bench#{if quick, do: " --quick", else: ""} --only batch: lookups at the memory limit\n"

    IO.puts(header <> "\n" <> Equality.machine())

    progress("## yardsticks: an ETS :set hit at 1,000,000 keys, the memory probe")
    ets = in_process(fn -> ets_hit_ns(if quick, do: 40_000, else: 400_000) end)
    {probe, _ticks} = mem_probe(if quick, do: 2_000_000, else: 20_000_000)
    yardsticks = yardsticks(ets, probe)
    IO.puts(yardsticks)

    tables =
      for n <- sizes do
        rows = in_process(fn -> measure(n, calls) end)
        table = table(n, rows, ets, probe)
        IO.puts(table)
        {n, rows, table}
      end

    plot = plot(Keyword.fetch!(opts, :results) <> ".svg", tables)

    Enum.join([header, Equality.machine(), yardsticks | Enum.map(tables, &elem(&1, 2))], "\n") <>
      "\n" <> plot
  end

  defp yardsticks(ets, {:ok, dep, indep}) do
    "Yardsticks (this run): #{ets_yardstick(ets)}; memory probe (1 GiB, random 8-byte " <>
      "reads): dependent #{fmt_f(dep, 1)} ns, independent #{fmt_f(indep, 1)} ns per read.\n"
  end

  defp yardsticks(ets, {:error, why}),
    do: "Yardsticks (this run): #{ets_yardstick(ets)}; memory probe skipped: #{why}.\n"

  # [{label, kind, ns per key}] for an index of `n` keys
  defp measure(n, calls) do
    progress("## #{fmt_int(n)} keys: building")
    {:ok, idx} = LsmIndex.new()

    for chunk <- Enum.chunk_every(0..(n - 1), 100_000),
        do: :ok = LsmIndex.add_many(idx, Enum.map(chunk, &{&1, rem(&1, 100_000)}))

    :ok = LsmIndex.compact(idx)
    progress("## #{fmt_int(n)} keys: measuring")
    st = :rand.seed_s(:exsss, {7, 8, 9})
    {hits, _st} = Enum.map_reduce(1..calls, st, fn _, st -> :rand.uniform_s(n, st) end)
    hits = Enum.map(hits, &(&1 - 1))
    misses = Enum.map(hits, &(&1 + n))

    single = [
      {"lookup/2 hit", :single, per_call(hits, &LsmIndex.lookup(idx, &1))},
      {"lookup/2 miss", :single, per_call(misses, &LsmIndex.lookup(idx, &1))}
    ]

    many =
      for b <- @batches do
        batches = Enum.chunk_every(hits, b, b, :discard)

        {"lookup_many/2 of #{b}", {:batch, b},
         per_key(batches, b, &LsmIndex.lookup_many(idx, &1))}
      end

    packed = hits |> Enum.chunk_every(256, 256, :discard) |> Enum.map(&LsmIndex.pack_keys/1)

    single ++
      many ++
      [
        {"lookup_many_packed/2 of 256", {:packed, 256},
         per_key(packed, 256, &LsmIndex.lookup_many_packed(idx, &1))}
      ]
  end

  # p50 ns per call, calls timed in groups of 8
  defp per_call(keys, fun) do
    keys
    |> Enum.chunk_every(8, 8, :discard)
    |> Enum.map(fn group ->
      t0 = System.monotonic_time(:nanosecond)
      Enum.each(group, fun)
      (System.monotonic_time(:nanosecond) - t0) / 8
    end)
    |> p50()
  end

  # p50 ns per key of calls of `size` keys each
  defp per_key(batches, size, fun) do
    batches
    |> Enum.map(fn batch ->
      t0 = System.monotonic_time(:nanosecond)
      fun.(batch)
      (System.monotonic_time(:nanosecond) - t0) / size
    end)
    |> p50()
  end

  defp p50(xs) do
    sorted = Enum.sort(xs)
    Enum.at(sorted, div(length(sorted), 2))
  end

  defp table(n, rows, ets, probe) do
    {dep, indep} =
      case probe do
        {:ok, dep, indep} -> {dep, indep}
        {:error, _} -> {nil, nil}
      end

    lines =
      for {label, kind, ns} <- rows do
        limit = if kind == :single, do: dep, else: indep
        [label, fmt_f(ns, 1), ratio(ns, limit), fmt_f(ns / ets, 3)]
      end

    "## #{fmt_int(n)} keys\n\n" <>
      markdown(
        ["", "ns per key", "× memory read (single: dependent; batch: independent)", "× ETS hit"],
        lines
      )
  end

  defp ratio(_ns, nil), do: "-"
  defp ratio(ns, limit), do: fmt_f(ns / limit, 2)

  defp plot(svg, tables) do
    series =
      for {n, rows, _} <- tables do
        points = for {_label, {:batch, b}, ns} <- rows, do: {b, 1.0e3 / ns}

        {"lookup_many/2, #{Plot.count(n)} keys", points}
      end

    result =
      Plot.lines(svg,
        title: "Batched lookups: keys per second against keys per call",
        xlabel: "keys per call (lookup_many/2)",
        ylabel: "M keys per second (p50)",
        log: "x",
        xtics: Enum.map(@batches, &{"#{&1}", &1}),
        series: series
      )

    Plot.link(result, "keys per second against keys per call", svg)
  end
end
