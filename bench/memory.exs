defmodule LsmIndex.Bench.Memory do
  @moduledoc """
  `mix bench` (memory section): a churn soak — the VM's resident memory against the bytes the
  index counts, sampled every second while one `LsmIndex` of N live keys churns for a set time.

    1. **Build.** With the VM settled (1 s idle, every process garbage collected, repeated
       until RSS holds still: `Report.stable_memory/0`, as for every settled point here but
       those of `--quick`), its resident (`VmRSS`) and anonymous (`RssAnon`) memory are the
       baseline. Then N integer keys `1..N`, handle = the key (one handle each),
       `add_many/2` in batches of 10,000 as in the compaction section, `compact/1`,
       `wait_idle/1`, settled again. 64 lanes, default options, in memory.
    2. **Churn.** One process, at full speed: batches of 500 `add_many/2` of fresh keys
       (ascending from N + 1) + 500 `remove_many/2` of the oldest live keys, first the built
       ones (first in, first out), so the live set stays exactly N and every key is removed
       N keys after it was added: tombstones reach the bottom segments and are purged there,
       and the segments turn over completely (every 20–30 s at 10M keys). A key's handle is
       `rem(key - 1, N) + 1`, the range the build used, so the value bits per key (and the
       counted bytes) stay those of the build. Every 5 s the churner calls `drop_handle/2`
       on the handle it gave, as a second handle, to the 5,000 keys (10 batches) added after
       the previous drop; those keys keep their own handle, so the purge of a dropped
       handle from overlays and recent segments runs without changing the live set.
       **Rate: full speed with back-pressure** (`overload: :wait`, the default): "the
       measured churn rate" of this VM *is* the full-speed rate (the compaction section's
       ~1.1 M ops/s sustained at 10M keys, batched), and a writer ahead of compaction waits
       for room rather than growing overlays without bound, so full speed is the most memory
       the write path can hold in flight. `--rate OPS` paces the churn instead (sleeps
       between batches to keep to OPS add/remove operations per second).
    3. **Sampler.** The calling process, every second (on a fixed schedule from the start):
       the VM's RSS and anonymous memory (`/proc/self/status`), `:erlang.memory(:total)`,
       and `LsmIndex.stats/1`: counted bytes, live keys (`:keys`), `:pending_drops`,
       `:segments`, `:frozen_overlays`, `:pending_jobs`. **Counted** = `segment_bytes +
       mph_heap_bytes + overlay_bytes` (segment buffers; MPHs decoded on the heap, 0 for the
       default quotient layout; active and frozen overlays), the compaction section's
       measure. **Ratio** = RSS growth over the
       baseline / counted. `stats/1` recounts the lanes' live keys after each drop (DESIGN.md
       "Dropped handles": ~0.5 s at 10M after churn, on a dirty scheduler), so the second
       after each drop pays one recount.
    4. **After.** The churn stops; `wait_idle`, settled; `compact`, `wait_idle`, settled.

  Printed and written to `bench/results/memory.md`: min / median / max of the ratio (and of
  RSS growth, anonymous growth, counted bytes) over the samples; the means over the first and
  the last minute (a quarter of the run when shorter); least-squares slopes, in MiB per
  minute over the second half of the run, of RSS growth, of the counted bytes and of RSS
  growth beyond counted; per minute (a quarter of a shorter run): the means, the lowest RSS
  growth beyond counted, the overlays and how often the compaction pool was idle (no job
  queued or running: `LargeBlocks` keeps up to 32 MiB of freed blocks for reuse while it is
  not, so RSS beyond counted follows the pool's load); churn operations and ops/s; peak RSS
  (`VmHWM`, reset when the churn starts); the settled points, and what the churn left behind
  (settled after churn + `compact` minus settled after build + `compact`, the same live keys
  and the same counted bytes). The series goes to `bench/results/memory.csv` (one line per
  second) and `bench/results/memory.svg`: RSS growth and counted MiB (left axis), the ratio
  (right axis), drawn by gnuplot. When gnuplot is missing the bench installs Debian's
  `gnuplot-nox` with `apt-get` if it runs as root; if that cannot be done it prints a note and
  writes no plot (the run still succeeds).

  **Drift check.** The counted bytes swing by a third and more within a minute as the lanes
  flush and merge (at 10M keys 200–550 MiB, per-minute means ±20%) and RSS follows them, so
  over a 5-minute half RSS growth's own slope carries ±20 MiB/min of that swing either way.
  The verdict therefore judges what the index does not account for: **no upward drift** when
  the slope of (RSS growth − counted) over the second half is at most 2% of the median RSS
  growth per minute (~7 MiB/min at 10M keys: a leak of ~0.15 B per operation at 0.8M ops/s).
  A rise of the counted bytes themselves shows in their own slope, the segment count and the
  pending drops, printed beside it. Runs under 2 minutes get no verdict. What the churn left
  behind (settled, compacted) is the noise-free counterpart: memory kept once it ended.

  Defaults: N = 10,000,000 keys, 600 s (`--minutes M` for another duration). `--quick`
  (CI): N = 1,000,000, `overlay_limit` 1,638 (the full soak's live keys per overlay, ~9.5,
  so lanes flush and merge as often per key) and 20 s, written to `memory-quick.*`.
  """

  import LsmIndex.Bench.Report,
    only: [
      progress: 1,
      fmt_f: 2,
      fmt_int: 1,
      memory: 0,
      settled_memory: 0,
      stable_memory: 0
    ]

  alias LsmIndex.Bench.Plot

  @lanes 64
  @batch 500
  @build_batch 10_000
  @drop_every_ms 5_000
  @tag_batches 10
  @progress_every_s 30
  @full_keys 10_000_000
  @full_overlay 16_384
  @mib 1_048_576
  # no upward drift: the slope of RSS growth - counted over the second half is at most this
  # fraction of the median RSS growth per minute
  @drift_per_minute 0.02
  # shorter runs are reported without a verdict (a 10 s half is all transients)
  @min_judged_s 120

  def run(opts) do
    quick = Keyword.fetch!(opts, :quick)
    machine = Keyword.fetch!(opts, :machine)
    results = Keyword.fetch!(opts, :results)
    rate = Keyword.get(opts, :rate)
    n = if quick, do: 1_000_000, else: @full_keys

    index_opts =
      if quick,
        do: [lanes: @lanes, overlay_limit: div(@full_overlay * n, @full_keys)],
        else: [lanes: @lanes]

    seconds =
      case Keyword.get(opts, :minutes) do
        nil -> if quick, do: 20, else: 600
        minutes -> max(round(minutes * 60), 4)
      end

    header = "# mix bench#{if quick, do: " --quick", else: ""}: churn soak (memory)\n"
    IO.puts(header)
    load_start = load_average()

    base = stable_memory()
    # quick (CI) settles the points after the build and the churn once (1 s), not until RSS
    # holds still (~10 s each)
    settle = if quick, do: &settled_memory/0, else: &stable_memory/0
    beam_base = :erlang.memory(:total)
    {:ok, index} = LsmIndex.new(index_opts)
    progress("building #{fmt_int(n)} keys")
    {build_us, :ok} = :timer.tc(fn -> build(index, n) end)
    built = settle.()
    built_stats = LsmIndex.stats(index)

    progress(
      "churning for #{seconds} s at #{if rate, do: "#{fmt_int(rate)} ops/s", else: "full speed"}, " <>
        "sampling memory every second"
    )

    peak_reset = reset_peak()
    counter = :counters.new(1, [])
    parent = self()
    churner = spawn_link(fn -> churn(index, n, counter, rate, parent) end)
    samples = sample(index, base, beam_base, counter, seconds)
    send(churner, :stop)
    churned_summary = receive do: ({:churned, summary} -> summary)
    peak = if peak_reset, do: peak_rss() - base.rss

    :ok = LsmIndex.wait_idle(index)
    churned = settle.()
    churned_stats = LsmIndex.stats(index)
    :ok = LsmIndex.compact(index)
    :ok = LsmIndex.wait_idle(index)
    compacted = settle.()
    compacted_stats = LsmIndex.stats(index)
    load_end = load_average()

    write_csv(samples, results <> ".csv")

    plot =
      plot(
        results,
        "#{fmt_int(n)} keys, #{duration(seconds)} of churn " <>
          "(#{fmt_f(churned_summary.ops / churned_summary.elapsed_us, 2)} M ops/s)"
      )

    settled = fn mem, st ->
      {(mem.rss - base.rss) / n, counted(st) / n, (mem.rss - base.rss) / max(counted(st), 1)}
    end

    table =
      report(%{
        n: n,
        overlay_limit: index_opts[:overlay_limit] || @full_overlay,
        build_s: build_us / 1.0e6,
        seconds: seconds,
        rate: rate,
        loads: {load_start, load_end},
        samples: samples,
        churn: churned_summary,
        delta: fn key -> Map.fetch!(churned_stats, key) - Map.fetch!(built_stats, key) end,
        peak: peak,
        pending_after: churned_stats.pending_drops,
        retained: compacted.rss - built.rss,
        quick: quick,
        settled: [
          {"after build + `compact`", settled.(built, built_stats)},
          {"after the churn", settled.(churned, churned_stats)},
          {"after the churn + `compact`", settled.(compacted, compacted_stats)}
        ],
        plot: plot,
        files: Path.basename(results)
      })

    IO.puts(table)
    header <> "\n" <> machine <> "\n" <> table
  end

  defp counted(st), do: st.segment_bytes + st.mph_heap_bytes + st.overlay_bytes

  defp handle(key, n), do: rem(key - 1, n) + 1

  defp build(index, n) do
    1..n
    |> Stream.chunk_every(@build_batch)
    |> Enum.each(fn chunk ->
      :ok = LsmIndex.add_many(index, Enum.map(chunk, &{&1, handle(&1, n)}))
    end)

    :ok = LsmIndex.compact(index)
    LsmIndex.wait_idle(index)
  end

  # -- the churner --

  defp churn(index, n, counter, rate, parent) do
    now = System.monotonic_time(:millisecond)

    churn_loop(%{
      index: index,
      n: n,
      counter: counter,
      rate: rate,
      parent: parent,
      start_us: System.monotonic_time(:microsecond),
      next_drop_ms: now + @drop_every_ms,
      # the next fresh key and the oldest live one
      next: n + 1,
      oldest: 1,
      # {handle, batches still to tag with it} | nil; tag handles count up from n + 1
      tag: nil,
      tags: 0,
      drops: 0,
      ops: 0,
      in_calls_us: 0
    })
  end

  defp churn_loop(s) do
    receive do
      :stop ->
        s = drop_tag(s)

        send(
          s.parent,
          {:churned,
           %{
             ops: s.ops,
             drops: s.drops,
             in_calls_us: s.in_calls_us,
             elapsed_us: System.monotonic_time(:microsecond) - s.start_us
           }}
        )
    after
      0 -> s |> next_tag() |> churn_batch() |> pace() |> churn_loop()
    end
  end

  # Every @drop_every_ms: drop the handle given to the last slice, start tagging a new one.
  defp next_tag(s) do
    now = System.monotonic_time(:millisecond)

    if now >= s.next_drop_ms do
      s = drop_tag(s)

      %{
        s
        | tag: {s.n + 1 + s.tags, @tag_batches},
          tags: s.tags + 1,
          next_drop_ms: max(s.next_drop_ms + @drop_every_ms, now + div(@drop_every_ms, 2))
      }
    else
      s
    end
  end

  defp drop_tag(%{tag: nil} = s), do: s

  defp drop_tag(%{tag: {h, _left}} = s) do
    :ok = LsmIndex.drop_handle(s.index, h)
    %{s | tag: nil, drops: s.drops + 1}
  end

  defp churn_batch(s) do
    fresh = s.next..(s.next + @batch - 1)
    adds = for k <- fresh, do: {k, handle(k, s.n)}
    removes = for k <- s.oldest..(s.oldest + @batch - 1), do: {k, handle(k, s.n)}

    {tagged, tag} =
      case s.tag do
        {h, left} when left > 0 -> {for(k <- fresh, do: {k, h}), {h, left - 1}}
        tag -> {[], tag}
      end

    t0 = System.monotonic_time(:microsecond)
    :ok = LsmIndex.add_many(s.index, adds)
    if tagged != [], do: :ok = LsmIndex.add_many(s.index, tagged)
    :ok = LsmIndex.remove_many(s.index, removes)
    in_call_us = System.monotonic_time(:microsecond) - t0
    ops = 2 * @batch + length(tagged)
    :counters.add(s.counter, 1, ops)

    %{
      s
      | next: s.next + @batch,
        oldest: s.oldest + @batch,
        tag: tag,
        ops: s.ops + ops,
        in_calls_us: s.in_calls_us + in_call_us
    }
  end

  defp pace(%{rate: nil} = s), do: s

  defp pace(s) do
    ahead_us = div(s.ops * 1_000_000, s.rate) - (System.monotonic_time(:microsecond) - s.start_us)
    if ahead_us >= 1_000, do: Process.sleep(div(ahead_us, 1_000))
    s
  end

  # -- the sampler --

  # One sample per second on a fixed schedule from now; growths are over `base`.
  defp sample(index, base, beam_base, counter, seconds) do
    t0 = System.monotonic_time(:millisecond)

    for k <- 1..seconds do
      Process.sleep(max(t0 + k * 1_000 - System.monotonic_time(:millisecond), 0))
      mem = memory()
      t = (System.monotonic_time(:millisecond) - t0) / 1_000
      beam = :erlang.memory(:total)
      st = LsmIndex.stats(index)

      s = %{
        t: t,
        rss: mem.rss - base.rss,
        anon: mem.anon - base.anon,
        beam: beam - beam_base,
        counted: counted(st),
        ratio: (mem.rss - base.rss) / max(counted(st), 1),
        keys: st.keys,
        ops: :counters.get(counter, 1),
        pending_drops: st.pending_drops,
        segments: st.segments,
        frozen: st.frozen_overlays,
        jobs: st.pending_jobs,
        overlay: st.overlay_bytes
      }

      if rem(k, @progress_every_s) == 0 do
        progress(
          "#{round(t)} s: #{fmt_f(s.ops / 1.0e6, 1)}M ops (#{fmt_f(s.ops / t / 1.0e6, 2)} M ops/s), " <>
            "#{fmt_int(s.keys)} keys, RSS growth #{mib(s.rss)} MiB, counted #{mib(s.counted)} MiB, " <>
            "ratio #{fmt_f(s.ratio, 2)}, pending drops #{s.pending_drops}"
        )
      end

      s
    end
  end

  # -- figures --

  defp report(r) do
    %{samples: samples, n: n, delta: d, churn: churn} = r
    last_t = List.last(samples).t
    window = min(60, div(r.seconds, 4))
    first = Enum.filter(samples, &(&1.t <= window))
    last = Enum.filter(samples, &(&1.t > last_t - window))
    second_half = Enum.filter(samples, &(&1.t >= last_t / 2))
    first_half = samples -- second_half

    idle_pct = fn part ->
      "#{round(100 * Enum.count(part, &(&1.jobs == 0)) / max(length(part), 1))}%"
    end

    rss_slope = slope(second_half, &(&1.rss / @mib))
    counted_slope = slope(second_half, &(&1.counted / @mib))
    # RSS beyond what the index counts: free of the swing of the counted bytes
    beyond_slope = slope(second_half, &((&1.rss - &1.counted) / @mib))
    median_rss = median(samples, &(&1.rss / @mib))
    drift = beyond_slope > @drift_per_minute * median_rss

    verdict =
      cond do
        r.seconds < @min_judged_s -> "not judged (a run under #{duration(@min_judged_s)})"
        drift -> "upward drift"
        true -> "no upward drift"
      end

    {load_start, load_end} = r.loads
    keys = Enum.map(samples, & &1.keys)

    spread = fn label, f, digits ->
      values = Enum.map(samples, f)

      "| #{label} | #{fmt_f(Enum.min(values), digits)} | #{fmt_f(median(values), digits)} | " <>
        "#{fmt_f(Enum.max(values), digits)} |"
    end

    means = fn label, part ->
      "| #{label} | #{fmt_f(mean(part, &(&1.rss / @mib)), 1)} | " <>
        "#{fmt_f(mean(part, &(&1.counted / @mib)), 1)} | " <>
        "#{fmt_f(mean(part, &((&1.rss - &1.counted) / @mib)), 1)} | " <>
        "#{fmt_f(mean(part, & &1.ratio), 3)} |"
    end

    periods =
      samples
      |> Enum.chunk_every(window)
      |> Enum.with_index()
      |> Enum.map_join("\n", fn {part, i} ->
        beyond = Enum.map(part, &((&1.rss - &1.counted) / @mib))

        "| #{i * window} s | " <>
          "#{fmt_f(mean(part, &(&1.rss / @mib)), 1)} | #{fmt_f(mean(part, &(&1.counted / @mib)), 1)} | " <>
          "#{fmt_f(mean(beyond, & &1), 1)} / #{fmt_f(Enum.min(beyond), 1)} | " <>
          "#{fmt_f(mean(part, &(&1.overlay / @mib)), 1)} | #{idle_pct.(part)} |"
      end)

    settled =
      Enum.map_join(r.settled, "\n", fn {label, {rss, counted, ratio}} ->
        "| #{label} | #{fmt_f(rss, 2)} | #{fmt_f(counted, 2)} | #{fmt_f(ratio, 2)} |"
      end)

    plot =
      case r.plot do
        :ok -> "![RSS growth, counted bytes and their ratio over the soak](#{r.files}.svg)\n\n"
        {:error, note} -> "(#{note})\n\n"
      end

    """
    N = #{fmt_int(n)} live keys (one handle each), #{@lanes} lanes, default options \
    (overlay_limit #{fmt_int(r.overlay_limit)}), in memory; built + compacted in \
    #{fmt_f(r.build_s, 1)} s. Churn for #{duration(r.seconds)} at \
    #{if r.rate, do: "a paced #{fmt_int(r.rate)} ops/s", else: "full speed with back-pressure"}, \
    memory sampled every second (#{length(samples)} samples). Load average #{load_start} at \
    the start, #{load_end} at the end (the cores may be shared with other work: CPU \
    contention moves the ops/s, not the memory per key).

    | churn (batches of #{@batch} adds of fresh keys + #{@batch} removes of the oldest) | value |
    |---|---|
    | add/remove operations | #{fmt_int(churn.ops)} |
    | throughput over the soak / inside the index calls | **#{fmt_f(churn.ops / churn.elapsed_us, 2)}** / #{fmt_f(churn.ops / max(churn.in_calls_us, 1), 2)} M ops/s |
    | `drop_handle/2` calls (every #{div(@drop_every_ms, 1000)} s: a second handle of the #{fmt_int(@tag_batches * @batch)} keys added after the previous one) | #{churn.drops} |
    | live keys sampled, min – max | #{fmt_int(Enum.min(keys))} – #{fmt_int(Enum.max(keys))} |
    | pending drops sampled, max / after the churn (`wait_idle`) | #{Enum.max(Enum.map(samples, & &1.pending_drops))} / #{r.pending_after} |
    | samples with the compaction pool idle (no job queued or running), first / second half | #{idle_pct.(first_half)} / #{idle_pct.(second_half)} |
    | writes that waited for room (stalls) | #{fmt_int(d.(:stalls))} |
    | flushes / merging builds / jobs | #{fmt_int(d.(:flushes))} / #{fmt_int(d.(:merges))} / #{fmt_int(d.(:jobs_done))} |
    | write amplification (keys written / keys flushed) | #{fmt_f(d.(:keys_written) / max(d.(:keys_flushed), 1), 2)} |

    | sampled every second (growth over the VM before the index) | min | median | max |
    |---|---|---|---|
    #{spread.("**RSS growth / counted**", & &1.ratio, 3)}
    #{spread.("RSS growth, MiB", &(&1.rss / @mib), 1)}
    #{spread.("anonymous memory growth, MiB", &(&1.anon / @mib), 1)}
    #{spread.("counted (segments + MPH + overlays), MiB", &(&1.counted / @mib), 1)}
    #{spread.("of which overlays, MiB", &(&1.overlay / @mib), 1)}
    #{spread.("BEAM (`:erlang.memory(:total)`) growth, MiB", &(&1.beam / @mib), 1)}
    #{spread.("segments", &(&1.segments * 1.0), 0)}

    | drift | RSS growth, MiB | counted, MiB | RSS growth − counted, MiB | ratio |
    |---|---|---|---|---|
    #{means.("mean over the first #{window} s", first)}
    #{means.("mean over the last #{window} s", last)}
    | least-squares slope over the second half, per minute | **#{signed(rss_slope, 2)}** | #{signed(counted_slope, 2)} | **#{signed(beyond_slope, 2)}** | #{signed(slope(second_half, & &1.ratio), 4)} |

    | #{window} s from (one sample a second) | RSS growth, MiB | counted, MiB | RSS growth − counted: mean / min, MiB | overlays, MiB | pool idle |
    |---|---|---|---|---|---|
    #{periods}

    Drift: **#{verdict}** — over the second half RSS growth moved #{signed(rss_slope, 2)} MiB/min \
    and the counted bytes #{signed(counted_slope, 2)} MiB/min; RSS growth beyond counted moved \
    #{signed(beyond_slope, 2)} MiB/min, #{signed(100 * beyond_slope / max(median_rss, 1.0e-9), 2)}% \
    of the median RSS growth per minute (upward drift: above +#{fmt_f(100 * @drift_per_minute, 0)}%).
    Retained (settled after the churn + `compact` against settled after the build + `compact`, \
    same live keys): **#{signed(r.retained / @mib, 1)} MiB** RSS. \
    Peak RSS growth during the churn (`VmHWM`): \
    #{if r.peak, do: "#{mib(r.peak)} MiB", else: "not measured (/proc/self/clear_refs not writable)"}.

    | settled (`wait_idle`, then 1 s idle + GC#{if r.quick, do: "", else: " until RSS holds still"}) | RSS growth, B/key | counted, B/key | RSS / counted |
    |---|---|---|---|
    #{settled}

    #{plot}Series (one line per second): [#{r.files}.csv](#{r.files}.csv).
    """
  end

  defp mib(bytes), do: fmt_f(bytes / @mib, 1)

  defp duration(s) when s < 60, do: "#{s} s"
  defp duration(s) when rem(s, 60) == 0, do: "#{div(s, 60)} min"
  defp duration(s), do: "#{div(s, 60)} min #{rem(s, 60)} s"

  defp signed(x, digits), do: if(x >= 0, do: "+", else: "") <> fmt_f(x, digits)

  defp mean(list, f), do: Enum.sum(Enum.map(list, f)) / max(length(list), 1)

  defp median(list, f), do: median(Enum.map(list, f))

  defp median(values) do
    sorted = Enum.sort(values)
    len = length(sorted)

    if rem(len, 2) == 1,
      do: Enum.at(sorted, div(len, 2)),
      else: (Enum.at(sorted, div(len, 2) - 1) + Enum.at(sorted, div(len, 2))) / 2
  end

  # Least-squares slope of f(sample) against time in minutes.
  defp slope(samples, f) do
    points = Enum.map(samples, &{&1.t / 60, f.(&1)})
    {mx, my} = {mean(points, &elem(&1, 0)), mean(points, &elem(&1, 1))}
    sxx = Enum.sum(Enum.map(points, fn {x, _} -> (x - mx) * (x - mx) end))
    sxy = Enum.sum(Enum.map(points, fn {x, y} -> (x - mx) * (y - my) end))
    if sxx == 0, do: 0.0, else: sxy / sxx
  end

  # -- memory readings beyond Report.memory/0 --

  # Resets VmHWM to the current RSS (writing 5 to clear_refs); false when not allowed.
  defp reset_peak, do: File.write("/proc/self/clear_refs", "5") == :ok

  defp peak_rss do
    [_, kb] = Regex.run(~r/VmHWM:\s+(\d+) kB/, File.read!("/proc/self/status"))
    String.to_integer(kb) * 1024
  end

  defp load_average do
    case File.read("/proc/loadavg") do
      {:ok, text} -> text |> String.split() |> hd()
      _ -> "unknown"
    end
  end

  # -- the series and its plot --

  defp write_csv(samples, file) do
    lines =
      for s <- samples do
        Enum.join(
          [
            fmt_f(s.t, 1),
            fmt_f(s.rss / @mib, 2),
            fmt_f(s.anon / @mib, 2),
            fmt_f(s.counted / @mib, 2),
            fmt_f(s.ratio, 4),
            fmt_f(s.beam / @mib, 2),
            s.keys,
            s.ops,
            s.pending_drops,
            s.segments,
            fmt_f(s.overlay / @mib, 2),
            s.frozen,
            s.jobs
          ],
          ","
        )
      end

    header =
      "t_s,rss_growth_mib,anon_growth_mib,counted_mib,ratio,beam_growth_mib,live_keys,ops," <>
        "pending_drops,segments,overlay_mib,frozen_overlays,pending_jobs"

    File.write!(file, Enum.join([header | lines], "\n") <> "\n")
  end

  # Draws `results`.svg from `results`.csv: :ok or {:error, note}.
  defp plot(results, title) do
    Plot.svg(results <> ".svg", """
    set datafile separator ","
    set title "churn soak: #{title}" noenhanced
    set xlabel "minutes of churn"
    set ylabel "MiB (growth over the VM before the index)"
    set y2label "RSS growth / counted"
    set ytics nomirror
    set y2tics
    set yrange [0:*]
    set y2range [0:*]
    set grid
    set key below
    plot "#{results}.csv" every ::1 using ($1/60):2 with lines lw 2 lc rgb "#1f77b4" title "RSS growth", \\
         "" every ::1 using ($1/60):4 with lines lw 2 lc rgb "#2ca02c" title "counted (segments + MPH + overlays)", \\
         "" every ::1 using ($1/60):5 axes x1y2 with lines lw 1 dt 2 lc rgb "#d62728" title "RSS growth / counted (right axis)"
    """)
  end
end
