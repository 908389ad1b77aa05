defmodule LsmIndex.Bench.Compaction do
  @moduledoc """
  `mix bench` (compaction section): what background compaction costs, on one `LsmIndex` of
  N integer keys (one handle each, 64 lanes, default options), in one run.

    1. **Lookups, compaction idle vs running.** Single `lookup/2` calls on random present
       keys, each timed on its own (p50/p99/p99.9, timer cost included). Idle: the
       compacted index with one pending dropped handle (so both phases take the same lookup
       path). Running: a process loops `drop_handle/2` (of an unused handle) + `compact/1`, so
       the pool rewrites every lane continuously while the measuring process looks up; that
       process waits on a dirty scheduler, so the only extra load is compaction itself. After
       a warm-up pass, #{3} rounds alternate idle and running; each condition's samples are
       pooled.
    2. **Sustained churn through batched calls.** One process: batches of 500 `add_many/2`
       of a fresh (key, handle) pair + 500 `remove_many/2` of the pairs added 8 batches
       earlier, for M operations at full speed (steady state: the live set stays N keys);
       then `wait_idle/1`. Throughput: ops per second of time inside the index calls (where
       back-pressure would show), and over the whole loop, batch making included; write
       amplification is the index's own (`keys_written / keys_flushed` over the phase) and
       the byte ratio `bytes_written / bytes_ingested`; compaction throughput is keys written
       per second of worker time (`compaction_busy_us`: per core).
  """

  import LsmIndex.Bench.Report,
    only: [progress: 1, fmt_f: 2, fmt_int: 1, stable_memory: 0]

  @lanes 64
  @rounds 3

  def run(opts) do
    quick = Keyword.fetch!(opts, :quick)
    machine = Keyword.fetch!(opts, :machine)

    # quick: small overlays, so a short churn still flushes and merges many times per lane
    {n, churn, samples, overlay} =
      if quick,
        do: {200_000, 1_000_000, 100_000, 1_024},
        else: {10_000_000, 50_000_000, 500_000, 16_384}

    persistent = Keyword.get(opts, :persistent, false)

    header =
      "# mix bench#{if quick, do: " --quick", else: ""}: background compaction" <>
        "#{if persistent, do: " (persistent index: segments mapped from files)", else: ""}\n"

    IO.puts(header)

    # the VM returns memory for ~10 s after start-up: a baseline taken earlier sits too high
    base_mem = stable_memory()

    dir =
      Path.join(System.tmp_dir!(), "lsm_bench_compaction_#{System.unique_integer([:positive])}")

    {:ok, index} =
      if persistent,
        do: LsmIndex.open(dir, lanes: @lanes, overlay_limit: overlay),
        else: LsmIndex.new(lanes: @lanes, overlay_limit: overlay)

    progress("building #{n} keys")
    {build_us, :ok} = :timer.tc(fn -> build(index, n) end)
    built_mem = stable_memory()
    built_stats = LsmIndex.stats(index)

    # 1. lookups: idle vs running, alternating (a warm-up pass first, then rounds of each,
    #    pooled), so that warm-up and drift of this VM fall on both conditions alike
    :ok = LsmIndex.drop_handle(index, 4_000_000_000)
    _warm = latency(index, n, div(samples, @rounds))

    {idle, running, busy} =
      Enum.reduce(1..@rounds, {[], [], []}, fn round, {idle, running, busy} ->
        progress("lookups, round #{round}/#{@rounds}: compaction idle, then running")
        idle_times = latency(index, n, div(samples, @rounds))
        compactor = spawn_compactor(index, 4_000_000_001 + round * 1_000_000)
        wait_until(fn -> LsmIndex.stats(index).pending_jobs > 0 end)
        {s0, t0} = {LsmIndex.stats(index), System.monotonic_time(:microsecond)}
        running_times = latency(index, n, div(samples, @rounds))
        {t1, s1} = {System.monotonic_time(:microsecond), LsmIndex.stats(index)}
        send(compactor, :stop)
        ref = Process.monitor(compactor)
        receive do: ({:DOWN, ^ref, _, _, _} -> :ok)
        :ok = LsmIndex.wait_idle(index)
        # worker time credited while the lookups ran, over their wall time (a job is
        # credited when it ends, so this is approximate at the edges of a window)
        b = (s1.compaction_busy_us - s0.compaction_busy_us) / max(t1 - t0, 1)
        progress("  round #{round}: pool busy #{round(b * 100)}% of a thread while measured")
        {idle_times ++ idle, running_times ++ running, [b | busy]}
      end)

    idle = percentiles(idle)
    running = percentiles(running)
    busy = Enum.sum(busy) / @rounds

    # 2. churn
    progress("churning #{churn} add/remove operations in batches of 1,000")
    before = LsmIndex.stats(index)
    {churn_us, in_calls_us} = :timer.tc(fn -> churn(index, n, churn) end)
    {settle_us, :ok} = :timer.tc(fn -> LsmIndex.wait_idle(index) end)
    after_ = LsmIndex.stats(index)
    churned_mem = stable_memory()
    d = fn key -> Map.fetch!(after_, key) - Map.fetch!(before, key) end
    counted = fn st -> st.segment_bytes + st.mph_heap_bytes + st.overlay_bytes end
    per_key = fn bytes -> fmt_f(bytes / n, 1) end
    wa = d.(:keys_written) / max(d.(:keys_flushed), 1)
    byte_ratio = d.(:bytes_written) / max(d.(:bytes_ingested), 1)
    per_core = d.(:keys_written) / max(d.(:compaction_busy_us), 1) * 1_000_000

    table = """
    N = #{fmt_int(n)} keys, #{@lanes} lanes, overlay_limit #{fmt_int(overlay)}, built + \
    compacted in #{fmt_f(build_us / 1.0e6, 1)} s; #{after_.compaction_threads} compaction \
    threads (shared pool, nice 19); #{fmt_f(d.(:keys_flushed) / @lanes / overlay, 1)} overlay \
    flushes per lane during the churn

    | lookups (#{fmt_int(samples)} single calls) | p50 ns | p99 ns | p99.9 ns | pool busy |
    |---|---|---|---|---|
    | compaction idle | #{idle.p50} | #{idle.p99} | #{idle.p999} | 0% |
    | compaction running | #{running.p50} | #{running.p99} | #{running.p999} | #{round(busy * 100)}% of a thread |
    | ratio running / idle | #{fmt_f(running.p50 / idle.p50, 2)} | **#{fmt_f(running.p99 / idle.p99, 2)}** | #{fmt_f(running.p999 / idle.p999, 2)} | |

    | churn (batches of 500 adds + 500 removes) | value |
    |---|---|
    | operations | #{fmt_int(churn)} |
    | sustained throughput of the index calls (time inside `add_many`/`remove_many`) | **#{fmt_f(churn / (in_calls_us / 1.0e6) / 1.0e6, 2)} M ops/s** |
    | the same over the whole loop (incl. making each batch in Elixir) | #{fmt_f(churn / (churn_us / 1.0e6) / 1.0e6, 2)} M ops/s |
    | drain after the last batch (`wait_idle`) | #{fmt_f(settle_us / 1000, 0)} ms |
    | write amplification (keys written / keys flushed) | **#{fmt_f(wa, 2)}** |
    | bytes written by compaction / bytes ingested (12 B per op) | #{fmt_f(byte_ratio, 2)} |
    | compaction throughput per core | #{fmt_f(per_core / 1.0e6, 2)} M keys/s |
    | flushes / merging builds / jobs | #{fmt_int(d.(:flushes))} / #{fmt_int(d.(:merges))} / #{fmt_int(d.(:jobs_done))} |
    | writes that waited for room (stalls) | #{fmt_int(d.(:stalls))} |
    | most segments in a lane | #{after_.max_lane_segments} |

    | memory (growth over the VM before the index; settled: `wait_idle`, 1 s, GC#{if persistent, do: "; RSS includes the mapped segment files' resident pages", else: ""}) | after build | after churn |
    |---|---|---|
    | counted (segments + MPH + overlays), B/key | #{per_key.(counted.(built_stats))} | #{per_key.(counted.(after_))} |
    | RSS growth, B/key | **#{per_key.(built_mem.rss - base_mem.rss)}** | **#{per_key.(churned_mem.rss - base_mem.rss)}** |
    | anonymous memory growth, B/key | #{per_key.(built_mem.anon - base_mem.anon)} | #{per_key.(churned_mem.anon - base_mem.anon)} |
    | RSS / counted | #{fmt_f((built_mem.rss - base_mem.rss) / max(counted.(built_stats), 1), 2)} | #{fmt_f((churned_mem.rss - base_mem.rss) / max(counted.(after_), 1), 2)} |
    """

    IO.puts(table)
    LsmIndex.close(index)
    File.rm_rf!(dir)
    header <> "\n" <> machine <> "\n" <> table
  end

  defp build(index, n) do
    1..n
    |> Stream.chunk_every(10_000)
    |> Enum.each(fn chunk -> :ok = LsmIndex.add_many(index, Enum.map(chunk, &{&1, &1})) end)

    :ok = LsmIndex.compact(index)
    LsmIndex.wait_idle(index)
  end

  # Rewrites every lane again and again: a pending drop makes each lane's segment stale.
  defp spawn_compactor(index, first_handle) do
    # linked: a compactor that fails takes the bench down instead of leaving "running" idle
    spawn_link(fn -> compact_loop(index, first_handle) end)
  end

  defp compact_loop(index, h) do
    receive do
      :stop -> :ok
    after
      0 ->
        :ok = LsmIndex.drop_handle(index, h)
        :ok = LsmIndex.compact(index)
        compact_loop(index, h + 1)
    end
  end

  defp wait_until(fun) do
    unless fun.() do
      Process.sleep(5)
      wait_until(fun)
    end
  end

  # Nanoseconds of `samples` single lookups of random present keys, each timed alone.
  defp latency(index, n, samples) do
    for _ <- 1..samples do
      k = :rand.uniform(n)
      t0 = System.monotonic_time(:nanosecond)
      [_] = LsmIndex.lookup(index, k)
      System.monotonic_time(:nanosecond) - t0
    end
  end

  defp percentiles(times) do
    sorted = times |> Enum.sort() |> List.to_tuple()
    at = fn p -> elem(sorted, min(tuple_size(sorted) - 1, trunc(p * tuple_size(sorted)))) end
    %{p50: at.(0.5), p99: at.(0.99), p999: at.(0.999)}
  end

  # Returns the microseconds spent inside the index calls (the rest is this loop making its
  # batches).
  defp churn(index, n, ops) do
    batches = div(ops, 1_000)

    {_queue, in_calls} =
      Enum.reduce(1..batches, {:queue.new(), 0}, fn b, {queue, in_calls} ->
        added = for _ <- 1..500, do: {:rand.uniform(n), 1_000_000_000 + rem(b, 1_000)}
        queue = :queue.in(added, queue)

        # the pairs added 8 batches ago (absent pairs until then: same call, no change)
        {removed, queue} =
          if :queue.len(queue) > 8 do
            {{:value, old}, queue} = :queue.out(queue)
            {old, queue}
          else
            {Enum.map(added, fn {k, _} -> {k + n, 1} end), queue}
          end

        t0 = System.monotonic_time(:microsecond)
        :ok = LsmIndex.add_many(index, added)
        :ok = LsmIndex.remove_many(index, removed)
        {queue, in_calls + System.monotonic_time(:microsecond) - t0}
      end)

    in_calls
  end
end
