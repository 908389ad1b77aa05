defmodule LsmIndex.StressTest do
  @moduledoc false
  # Concurrency stress: reader processes check every answer against an oracle while one
  # writer churns 600k writes and the pool compacts continuously; the index reopens equal.
  # Bounded by work, not time: the readers run until the writer is done, and only counts
  # are asserted (a busy machine makes it slower, never wrong); throughput is printed. The
  # random streams are seeded from ExUnit's seed, printed, so `mix test --seed N` replays
  # the same operations (their interleaving is the schedulers').
  #
  # No normal scheduler may be held for 1 ms by our code. `:erlang.system_monitor/2`
  # `long_schedule` cannot tell that apart on this 2-vCPU VM: with four busy processes,
  # dirty-scheduler retries and compaction threads it reports ~100 2-9 ms slices per 30 s in
  # plain Elixir code even in memory (the OS preempting scheduler threads), and ~600 with the
  # index on disk (the hypervisor steals the vCPUs while the host does our fsyncs: ~100
  # steal ticks per 20 s vs ~3). So the check is the equivalent measured inside the NIF: the
  # CPU time of every normal-scheduler call (timing.rs). That time also holds the VM's own
  # stalls: single calls of every kind, a one-key `lookup` included, show 1-7 ms of "CPU" a
  # few times per run, each inside a stretch in which the virtual CPU ran no guest code
  # (DESIGN.md, "Call timing outliers"). So every reader round also calls `timing_noop`, a
  # NIF that does nothing, as the control, and `CallTiming` allows each NIF a few calls over
  # 1 ms plus what the control's rate explains: a NIF that really held its scheduler (a
  # batch applied inline, a slow lookup path) puts thousands over and fails at once. Every
  # call over 1 ms is printed with its wall time, faults and context switches.
  # Lane write locks are held for at most 256 pairs, so waits for a writer stay far below
  # 1 ms. The index lives on tmpfs when there is one, to keep disk interrupts out of the
  # measurement (same files, renames, fsync calls and maps). `scheduling_test.exs` does the
  # plain monitor check with one busy process. Not async: the monitor and the NIF timing are
  # VM-wide.
  use ExUnit.Case, async: false
  alias LsmIndex.Test.CallTiming

  @moduletag :tmp_dir
  @moduletag timeout: 900_000

  @writes 600_000
  @stable 20_000
  @churn 5_000
  @readers 3
  @batch 200
  # turns of the control's empty loop: about a microsecond, like a lookup
  @control_spins 3_000

  describe "scenario: concurrency stress" do
    test "readers see no wrong answer under churn and continuous compaction", %{tmp_dir: tmp} do
      dir = data_dir(tmp)
      on_exit(fn -> File.rm_rf!(dir) end)
      opts = [lanes: 8, overlay_limit: 256, sync: :none]
      {:ok, index} = LsmIndex.open(dir, opts)
      # stable keys never change: exact answers are required throughout
      :ok = LsmIndex.add_many(index, for(i <- 1..@stable, do: {{:s, i}, rem(i, 100)}))
      :ok = LsmIndex.add_many(index, for(i <- 1..@stable, do: {{:s, i}, 1_000 + rem(i, 7)}))
      # churn keys: {key, version, previous set, current set}; the writer announces a change
      # (version + 1, previous = what the index holds) before making it in the index
      oracle = :ets.new(:oracle, [:public, read_concurrency: true])
      :ets.insert(oracle, for(i <- 1..@churn, do: {{:c, i}, 0, [], []}))
      # the readers run until the writer is done
      done = :atomics.new(1, [])
      seed = ExUnit.configuration()[:seed]
      IO.puts("\nstress: seed #{seed} (mix test --seed #{seed} replays the same operations)")

      previous = :erlang.system_monitor(self(), [{:long_schedule, 1}])
      :ok = LsmIndex.Native.timing_enable(:detail)
      steal_before = steal_ticks()
      started = System.monotonic_time(:millisecond)

      try do
        writer =
          Task.async(fn ->
            writes = write_loop(index, oracle, div(@writes, @batch), rand(seed, 0), 0)
            :atomics.put(done, 1, 1)
            writes
          end)

        readers =
          for r <- 1..@readers do
            Task.async(fn -> read_loop(index, oracle, done, rand(seed, r), %{}) end)
          end

        writes = Task.await(writer, :infinity)
        counts = Enum.map(readers, &Task.await(&1, :infinity))
        elapsed_ms = System.monotonic_time(:millisecond) - started
        timing = LsmIndex.Native.timing_report()
        pids = [writer.pid | Enum.map(readers, & &1.pid)]
        long = for {pid, info} <- long_schedules([]), pid in pids, do: info[:timeout]
        total = fn key -> Enum.sum(Enum.map(counts, &Map.get(&1, key, 0))) end
        checked = total.(:checked)
        wrong = Enum.flat_map(counts, &Map.get(&1, :wrong, []))
        stats = LsmIndex.stats(index)
        calls = fn nif -> get_in(timing, [:by_nif, nif, :calls]) || 0 end

        IO.puts(
          "stress: #{writes} writes, #{checked} answers checked (#{total.(:skipped)} " <>
            "skipped) in #{elapsed_ms} ms, #{stats.jobs_done} compaction jobs, " <>
            "#{stats.stalls} stalled writes, WA #{Float.round(stats.write_amplification, 2)}; " <>
            "long_schedule events #{length(long)} (max #{Enum.max(long, fn -> 0 end)} ms); " <>
            "steal ticks #{steal_ticks() - steal_before}; load #{load()}\n" <>
            CallTiming.table(timing)
        )

        assert wrong == [], "wrong answers: #{inspect(Enum.take(wrong, 5))}"
        assert writes == @writes
        # every write batch was one timed normal-scheduler call (a refused one retried
        # dirty), every reader round one lookup_many or two lookups and one control call (at
        # least: timing counts the whole VM's calls)
        rounds = total.(:rounds)
        assert calls.("add_many") + calls.("remove_many") >= div(@writes, @batch)
        assert calls.("lookup_many") + div(calls.("lookup"), 2) >= rounds
        assert calls.("timing_noop") == rounds
        # the readers ran as long as the writer, on reduction-fair schedulers
        assert checked > 10_000, "too few checked answers: #{inspect(counts)}"
        # 3,000 batches of 200 overflow 256-entry overlays thousands of times
        assert stats.jobs_done > 100, "compaction was not continuously active: #{inspect(stats)}"
        assert stats.max_lane_segments <= 4

        assert CallTiming.held(timing) == [],
               "NIF calls held a normal scheduler ({nif, over 1 ms, allowed}): " <>
                 inspect(CallTiming.held(timing))
      after
        LsmIndex.Native.timing_enable(false)

        case previous do
          :undefined -> :erlang.system_monitor(:undefined)
          {monitor, monitor_opts} -> :erlang.system_monitor(monitor, monitor_opts)
        end
      end

      # the index reopens equal to the oracle
      :ok = LsmIndex.flush(index)
      :ok = LsmIndex.close(index)
      {:ok, reopened} = LsmIndex.open(dir, opts)

      for i <- Enum.take_every(1..@stable, 7) do
        assert LsmIndex.lookup(reopened, {:s, i}) == Enum.sort([rem(i, 100), 1_000 + rem(i, 7)])
      end

      for {key, _version, _previous, current} <- :ets.tab2list(oracle) do
        assert LsmIndex.lookup(reopened, key) == current, "#{inspect(key)} after reopening"
      end

      assert LsmIndex.size(reopened) ==
               @stable + Enum.count(:ets.tab2list(oracle), &(elem(&1, 3) != []))

      :ok = LsmIndex.close(reopened)
    end
  end

  defp rand(seed, stream), do: :rand.seed_s(:exsss, {seed, stream, 17})

  # A fresh directory on tmpfs (/dev/shm) if there is one, else under the test's tmp dir.
  defp data_dir(tmp) do
    shm = "/dev/shm"

    base =
      if File.dir?(shm) and match?({:ok, %{access: :read_write}}, File.stat(shm)),
        do: shm,
        else: tmp

    # the OS pid too: two test runs side by side count unique integers alike
    Path.join(base, "lsm_index_stress_#{System.pid()}_#{System.unique_integer([:positive])}")
  end

  defp long_schedules(acc) do
    receive do
      {:monitor, pid, :long_schedule, info} -> long_schedules([{pid, info} | acc])
    after
      0 -> acc
    end
  end

  # The machine's 1-, 5- and 15-minute load averages (Linux; "?" elsewhere).
  defp load do
    case File.read("/proc/loadavg") do
      {:ok, text} -> text |> String.split() |> Enum.take(3) |> Enum.join(" ")
      _ -> "?"
    end
  end

  # Ticks the hypervisor stole from this VM's CPUs so far (Linux; 0 elsewhere).
  defp steal_ticks do
    case File.read("/proc/stat") do
      {:ok, "cpu " <> rest} -> rest |> String.split() |> Enum.at(7, "0") |> String.to_integer()
      _ -> 0
    end
  end

  # Batches of distinct churn keys, each getting one add or remove of a random handle.
  defp write_loop(_index, _oracle, 0, _rand, writes), do: writes

  defp write_loop(index, oracle, batches, rand, writes) do
    {keys, rand} = distinct_keys(rand, @batch)
    {op, rand} = :rand.uniform_s(2, rand)
    {h, rand} = :rand.uniform_s(40, rand)

    changes =
      for k <- keys do
        [{^k, version, _previous, current}] = :ets.lookup(oracle, k)

        next = if op == 1, do: Enum.sort(Enum.uniq([h | current])), else: List.delete(current, h)

        {k, version + 1, current, next}
      end

    :ets.insert(oracle, changes)
    pairs = for k <- keys, do: {k, h}

    :ok =
      if op == 1, do: LsmIndex.add_many(index, pairs), else: LsmIndex.remove_many(index, pairs)

    write_loop(index, oracle, batches - 1, rand, writes + @batch)
  end

  defp distinct_keys(rand, n) do
    {ids, rand} =
      Enum.reduce(1..(n * 2), {MapSet.new(), rand}, fn _, {set, rand} ->
        {i, rand} = :rand.uniform_s(@churn, rand)
        {MapSet.put(set, i), rand}
      end)

    {ids |> Enum.take(n) |> Enum.map(&{:c, &1}), rand}
  end

  defp read_loop(index, oracle, done, rand, counts) do
    if :atomics.get(done, 1) == 1 do
      counts
    else
      # the control: a NIF that does nothing, timed like the others
      :ok = LsmIndex.Native.timing_noop(@control_spins)
      counts = Map.update(counts, :rounds, 1, &(&1 + 1))
      {roll, rand} = :rand.uniform_s(10, rand)
      {i, rand} = :rand.uniform_s(@churn, rand)
      {s, rand} = :rand.uniform_s(@stable, rand)

      counts =
        if roll <= 7 do
          counts |> check_churn(index, oracle, {:c, i}) |> check_stable(index, s)
        else
          # a transaction-like batch: stable and churn keys together
          keys = [{:s, s}, {:c, i}, {:s, div(s, 2) + 1}, {:c, div(i, 2) + 1}]
          before = Enum.map(keys, &:ets.lookup(oracle, &1))
          got = LsmIndex.lookup_many(index, keys)
          later = Enum.map(keys, &:ets.lookup(oracle, &1))

          Enum.zip([keys, got, before, later])
          |> Enum.reduce(counts, fn
            {{:s, n} = k, got, _, _}, acc -> verdict(acc, k, got, [stable_set(n)])
            {k, got, [r1], [r2]}, acc -> verdict(acc, k, got, allowed(r1, r2))
          end)
        end

      read_loop(index, oracle, done, rand, counts)
    end
  end

  defp check_stable(counts, index, s),
    do: verdict(counts, {:s, s}, LsmIndex.lookup(index, {:s, s}), [stable_set(s)])

  defp check_churn(counts, index, oracle, key) do
    [r1] = :ets.lookup(oracle, key)
    got = LsmIndex.lookup(index, key)
    [r2] = :ets.lookup(oracle, key)
    verdict(counts, key, got, allowed(r1, r2))
  end

  defp stable_set(n), do: Enum.sort([rem(n, 100), 1_000 + rem(n, 7)])

  # What a lookup between oracle reads r1 and r2 may answer: the sets of the changes it may
  # overlap; :skip when the writer changed the key more than once in between.
  defp allowed({_, v, previous, current}, {_, v, _, _}), do: [previous, current]
  defp allowed({_, v1, p1, c1}, {_, v2, _, c2}) when v2 == v1 + 1, do: [p1, c1, c2]
  defp allowed(_r1, _r2), do: :skip

  defp verdict(counts, _key, _got, :skip), do: Map.update(counts, :skipped, 1, &(&1 + 1))

  defp verdict(counts, key, got, allowed) do
    if got in allowed,
      do: Map.update(counts, :checked, 1, &(&1 + 1)),
      else: Map.update(counts, :wrong, [{key, got, allowed}], &[{key, got, allowed} | &1])
  end
end
