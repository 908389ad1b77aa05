defmodule LsmIndex.Bench.Report do
  @moduledoc "Formatting and progress lines shared by the `mix bench` scripts."

  @doc "A timestamped progress line on stderr (tables go to stdout)."
  def progress(msg),
    do: IO.puts(:stderr, "[#{Time.utc_now() |> Time.truncate(:second)}] #{msg}")

  @doc "`x` with `digits` decimals."
  def fmt_f(x, digits), do: :erlang.float_to_binary(x * 1.0, decimals: digits)

  @doc "An integer with thousands separators."
  def fmt_int(i) when is_integer(i) do
    i
    |> Integer.to_string()
    |> String.reverse()
    |> String.replace(~r/(\d{3})(?=\d)/, "\\1,")
    |> String.reverse()
  end

  @doc "A markdown table of `columns` over `lines` (lists of cells), columns padded."
  def markdown(columns, lines) do
    rows = [columns | Enum.map(lines, fn l -> Enum.map(l, &to_string/1) end)]

    widths =
      rows
      |> Enum.zip_with(& &1)
      |> Enum.map(fn col -> col |> Enum.map(&String.length/1) |> Enum.max() end)

    fmt = fn row ->
      "| " <> (Enum.zip_with(row, widths, &String.pad_trailing/2) |> Enum.join(" | ")) <> " |"
    end

    sep = "|" <> Enum.map_join(widths, "|", &String.duplicate("-", &1 + 2)) <> "|"
    Enum.join([fmt.(columns), sep | Enum.map(tl(rows), fmt)], "\n") <> "\n"
  end

  @ets_keys 1_000_000
  @ets_per_sample 8

  @doc """
  The yardstick the benches state their times against: the p50 ns of an `:ets.lookup` hit
  in a `:set` of 1M keys, in samples of 8 calls timed together (`samples` calls in all).
  Run it in a process of its own (`in_process/1`): its table dies with it.
  """
  def ets_hit_ns(samples) do
    t = :ets.new(:bench_ets_hit, [:set, :public, read_concurrency: true])
    for i <- 1..@ets_keys, do: :ets.insert(t, {i, [i]})
    st = :rand.seed_s(:exsss, {1, 2, 3})

    {times, _} =
      Enum.map_reduce(1..div(samples, @ets_per_sample), st, fn _, st ->
        {keys, st} =
          Enum.map_reduce(1..@ets_per_sample, st, fn _, st ->
            :rand.uniform_s(@ets_keys, st)
          end)

        t0 = System.monotonic_time(:nanosecond)
        Enum.each(keys, &:ets.lookup(t, &1))
        {(System.monotonic_time(:nanosecond) - t0) / @ets_per_sample, st}
      end)

    sorted = Enum.sort(times)
    Enum.at(sorted, min(round(0.5 * length(sorted)), length(sorted) - 1))
  end

  @doc """
  The memory-latency yardstick (`bench/mem_probe.c`, built with `cc`): `reads` random 8-byte
  reads of 1 GiB, each depending on the last and independent of each other. Returns
  `{{:ok, dependent_ns, independent_ns} | {:error, why}, its CPU ticks}`.
  """
  def mem_probe(reads) do
    src = Path.expand("bench/mem_probe.c")
    exe = Path.join(System.tmp_dir!(), "lsm_mem_probe_#{System.unique_integer([:positive])}")

    with cc when cc != nil <- System.find_executable("cc"),
         {_, 0} <- System.cmd(cc, ["-O2", "-o", exe, src], stderr_to_stdout: true),
         {out, 0} <- System.cmd(exe, ["1024", "#{reads}"], stderr_to_stdout: true) do
      File.rm(exe)
      [_, dep] = Regex.run(~r/dependent_ns ([\d.]+)/, out)
      [_, indep] = Regex.run(~r/independent_ns ([\d.]+)/, out)
      [_, ticks] = Regex.run(~r/cpu_ticks (\d+)/, out)

      {{:ok, String.to_float(dep), String.to_float(indep)}, String.to_integer(ticks)}
    else
      nil -> {{:error, "no C compiler (cc)"}, 0}
      {out, status} -> {{:error, "exit #{status}: #{String.trim(out)}"}, 0}
    end
  end

  @doc "How a table states `ets_hit_ns/1`'s figure: `ETS `:set` hit at 1,000,000 keys … ns (…)`."
  def ets_yardstick(ets_hit) do
    "ETS `:set` hit at #{fmt_int(@ets_keys)} keys #{fmt_f(ets_hit, 0)} ns " <>
      "(p50, `:ets.lookup`, samples of #{@ets_per_sample})"
  end

  @doc """
  The VM's resident (`VmRSS`) and anonymous (`RssAnon`) memory now, in bytes, from
  `/proc/self/status`.
  """
  def memory do
    status = File.read!("/proc/self/status")

    field = fn name ->
      [_, kb] = Regex.run(~r/#{name}:\s+(\d+) kB/, status)
      String.to_integer(kb) * 1024
    end

    %{rss: field.("VmRSS"), anon: field.("RssAnon")}
  end

  @doc """
  `memory/0` once background work has settled: after 1 s, with every process garbage
  collected (callers `wait_idle/1` their index first).
  """
  def settled_memory do
    Process.sleep(1_000)
    for pid <- Process.list(), do: :erlang.garbage_collect(pid)
    memory()
  end

  @doc """
  `settled_memory/0` repeated until RSS holds still (two readings 1 s apart within 64 KiB;
  at most 30 s). The VM returns freed memory over seconds, not at once: the BEAM's segment
  allocator caches freed carriers and unmaps them bit by bit (with `+MMmcs 0`, no cache,
  the decay is gone). Right after `mix` has started the VM and compiled the bench scripts it
  gives back ~35 MiB over ~10 s; after building a 1M-key index, ~800 KiB/s for 10 s more
  (2026-11-29). A baseline read too early sits too high (the index's growth then reads too
  low); a reading after the work, too early, too high.
  """
  def stable_memory, do: stable_memory(settled_memory(), 30)

  defp stable_memory(previous, tries) do
    now = settled_memory()

    if abs(now.rss - previous.rss) < 64 * 1024 or tries <= 1,
      do: now,
      else: stable_memory(now, tries - 1)
  end

  @doc """
  Runs `fun` in a fresh process (its heap and allocations die with it) and returns its result.
  Waits for the process to be gone, so its memory is freed before the next one measures.
  """
  def in_process(fun) do
    parent = self()
    {pid, ref} = spawn_monitor(fn -> send(parent, {self(), fun.()}) end)

    receive do
      {^pid, result} ->
        receive do
          {:DOWN, ^ref, :process, ^pid, _} -> result
        end

      {:DOWN, ^ref, :process, ^pid, reason} ->
        raise "bench process failed: #{inspect(reason)}"
    end
  end
end
