defmodule LsmIndex.CompactionTest do
  use ExUnit.Case, async: true

  alias LsmIndex.Test.Wait

  @stats_keys ~w(keys lanes segments segments_per_level max_lane_segments segment_bytes
    mph_heap_bytes overlay_keys overlay_bytes frozen_overlays pending_drops ops bytes_ingested
    keys_flushed keys_written bytes_written flushes merges write_amplification pending_jobs
    jobs_done last_job_us compaction_busy_us compaction_threads stalls lookup_hits
    lookup_misses prefilter_rejects counted_handles handle_count_bytes)a

  describe "new/1" do
    test "policies, pools and overload modes: each really flushes, merges and overloads" do
      for opts <- [
            [policy: :leveled],
            [policy: :triangular, size_ratio: 2],
            [compaction_threads: 1],
            [compaction_threads: :shared],
            [overload: :error, max_overlay_keys: 64]
          ] do
        # 2,000 keys into one lane's 32-key overlay: ~60 flushes, and merges to stay under
        # max_segments; each add waits for room if the pool falls behind (or, with
        # overload: :error, is retried after the pool caught up)
        {:ok, index} = LsmIndex.new([lanes: 1, overlay_limit: 32] ++ opts)

        for i <- 1..2_000 do
          with {:error, :overloaded} <- LsmIndex.add(index, i, rem(i, 3)) do
            :ok = LsmIndex.wait_idle(index)
            :ok = LsmIndex.add(index, i, rem(i, 3))
          end
        end

        :ok = LsmIndex.wait_idle(index)
        stats = LsmIndex.stats(index)
        assert stats.flushes > 0 and stats.merges > 0, inspect({opts, stats})
        assert stats.max_lane_segments <= 4 and stats.segments > 0
        assert stats.keys_written > stats.keys_flushed
        assert LsmIndex.size(index) == 2_000

        assert LsmIndex.lookup_many(index, Enum.to_list(1..2_000)) ==
                 for(i <- 1..2_000, do: [rem(i, 3)])
      end

      # the overload modes refuse (:error) or wait (:wait) once compaction is behind: the
      # "scenario: back-pressure" tests below park the worker to get there
      shared = LsmIndex.stats(LsmIndex.new!(compaction_threads: :shared)).compaction_threads
      assert shared in 1..2
      assert LsmIndex.stats(LsmIndex.new!()).compaction_threads == shared
      assert LsmIndex.stats(LsmIndex.new!(compaction_threads: 1)).compaction_threads == 1
      assert LsmIndex.stats(LsmIndex.new!(compaction_threads: 3)).compaction_threads == 3
    end

    test "bad values raise ArgumentError naming the option" do
      assert_raise ArgumentError, ~r/:policy/, fn -> LsmIndex.new(policy: :tiered) end
      assert_raise ArgumentError, ~r/:overload/, fn -> LsmIndex.new(overload: :drop) end
      assert_raise ArgumentError, ~r/:size_ratio/, fn -> LsmIndex.new(size_ratio: 0) end

      assert_raise ArgumentError, ~r/:compaction_threads/, fn ->
        LsmIndex.new(compaction_threads: 0)
      end

      assert_raise ArgumentError, ~r/:max_overlay_keys/, fn ->
        LsmIndex.new(overlay_limit: 100, max_overlay_keys: 99)
      end
    end
  end

  describe "subscribe/3" do
    test "events: each job that writes is started, then done, under one job number" do
      {:ok, index} = LsmIndex.new(lanes: 2, overlay_limit: 32)
      :ok = LsmIndex.subscribe(index, self(), events: [:started])
      # subscribing again adds events
      :ok = LsmIndex.subscribe(index, self(), events: [:done, :failed])
      for i <- 1..1_000, do: :ok = LsmIndex.add(index, i, 1)
      :ok = LsmIndex.compact(index)
      :ok = LsmIndex.wait_idle(index)
      events = received_events()
      assert length(events) >= 4 and rem(length(events), 2) == 0

      # per lane, started/done alternate with the same job number; jobs are numbered apart
      for lane <- [0, 1] do
        of_lane = Enum.filter(events, fn {_kind, info} -> info.lane == lane end)

        for [{:compaction_started, started}, {:compaction_done, done}] <-
              Enum.chunk_every(of_lane, 2) do
          assert started == %{job: done.job, lane: lane}
          assert done.flushes + done.merges > 0
        end
      end

      jobs = for {:compaction_done, info} <- events, do: info.job
      assert length(Enum.uniq(jobs)) == length(jobs)

      assert Enum.sum(for {:compaction_done, i} <- events, do: i.keys_written) ==
               LsmIndex.stats(index).keys_written

      # a compaction with nothing to write sends nothing
      :ok = LsmIndex.compact(index)
      :ok = LsmIndex.wait_idle(index)
      assert received_events() == []
    end

    test "bad events raise ArgumentError" do
      index = LsmIndex.new!()

      assert_raise ArgumentError, ~r/:events/, fn ->
        LsmIndex.subscribe(index, self(), events: [:x])
      end

      assert_raise ArgumentError, ~r/:events/, fn ->
        LsmIndex.subscribe(index, self(), events: [])
      end

      assert_raise ArgumentError, fn -> LsmIndex.subscribe(index, self(), bogus: 1) end
    end
  end

  describe "scenario: back-pressure" do
    test "overload: :error refuses writes to a full lane and writes nothing of them" do
      {index, hold} = full_lane(overload: :error)

      for i <- 49..60 do
        assert LsmIndex.add(index, {:k, i}, 1) == {:error, :overloaded}
      end

      # all or nothing: the batch's key already present keeps its set
      assert LsmIndex.add_many(index, [{{:k, 61}, 1}, {{:k, 5}, 2}]) == {:error, :overloaded}
      assert LsmIndex.remove(index, {:k, 5}, 1) == {:error, :overloaded}
      big = for i <- 1..600, do: {{:big, i}, 1}
      assert LsmIndex.add_many(index, big) == {:error, :overloaded}

      assert LsmIndex.lookup_many(index, [{:k, 49}, {:k, 61}, {:k, 5}, {:big, 1}]) ==
               [[], [], [1], []]

      assert LsmIndex.stats(index).stalls == 15

      Wait.release(hold)
      :ok = LsmIndex.wait_idle(index)
      assert LsmIndex.add(index, {:k, 49}, 1) == :ok
      assert LsmIndex.size(index) == 49

      assert LsmIndex.lookup_many(index, for(i <- 1..49, do: {:k, i})) ==
               List.duplicate([1], 49)
    end

    test "overload: :wait (default) makes a write wait for room and loses nothing" do
      {index, hold} = full_lane([])

      writers =
        for batch <- [[{{:k, 49}, 2}], for(i <- 50..800, do: {{:k, i}, 2})] do
          Task.async(fn -> LsmIndex.add_many(index, batch) end)
        end

      # both found the lane full (the single write twice: on a normal scheduler, then
      # waiting on a dirty one); they cannot finish while the worker is parked
      Wait.until("both writers to stall", fn -> LsmIndex.stats(index).stalls >= 3 end)
      assert Enum.map(writers, &Task.yield(&1, 0)) == [nil, nil]
      assert LsmIndex.lookup(index, {:k, 49}) == []

      Wait.release(hold)
      assert Task.await_many(writers, Wait.hang_guard()) == [:ok, :ok]
      assert LsmIndex.size(index) == 800
      assert LsmIndex.lookup(index, {:k, 7}) == [1]
      assert LsmIndex.lookup(index, {:k, 700}) == [2]
      :ok = LsmIndex.wait_idle(index)
      assert LsmIndex.stats(index).stalls >= 2
    end
  end

  describe "subscribe/2" do
    test "each background job is reported to subscribers, once each" do
      {:ok, index} = LsmIndex.new(lanes: 2, overlay_limit: 32)
      bridge = subscribers(index)
      :ok = LsmIndex.subscribe(index)
      :ok = LsmIndex.subscribe(index, self())
      # subscribed after us, a relay forwards its reports: ours are sent before its copies
      :ok = LsmIndex.subscribe(index, relay())
      for i <- 1..1_000, do: :ok = LsmIndex.add(index, i, 1)
      :ok = LsmIndex.compact(index)
      :ok = LsmIndex.wait_idle(index)
      stats = LsmIndex.stats(index)
      relayed = await_relayed(stats.keys_written)
      # subscribed twice, delivered once: the same reports, in the same order
      assert received() == relayed

      for info <- relayed do
        assert %{lane: lane, flushes: f, merges: m, keys_flushed: _, keys_written: w} = info
        assert lane in [0, 1] and f + m > 0 and w > 0
        assert info.bytes_written > 0 and info.segments >= 1 and info.duration_us >= 0
      end

      assert Enum.sum(Enum.map(relayed, & &1.flushes)) == stats.flushes
      assert Enum.sum(Enum.map(relayed, & &1.merges)) == stats.merges

      # unsubscribed: the next jobs are reported to the relay only
      :ok = LsmIndex.unsubscribe(index)
      for i <- 1..1_000, do: :ok = LsmIndex.add(index, {:more, i}, 1)
      :ok = LsmIndex.compact(index)
      :ok = LsmIndex.wait_idle(index)
      assert [_ | _] = await_relayed(LsmIndex.stats(index).keys_written - stats.keys_written)
      assert received() == []
      assert subscribers(index) == bridge + 1
    end

    test "a subscriber that exits is forgotten" do
      {:ok, index} = LsmIndex.new(lanes: 1, overlay_limit: 8)
      bridge = subscribers(index)
      {pid, ref} = spawn_monitor(fn -> :ok end)
      assert_receive {:DOWN, ^ref, _, _, _}, Wait.hang_guard()
      :ok = LsmIndex.subscribe(index, pid)
      :ok = LsmIndex.subscribe(index)
      assert subscribers(index) == bridge + 2
      for i <- 1..200, do: :ok = LsmIndex.add(index, i, 1)
      :ok = LsmIndex.compact(index)
      # the first job's report finds it gone (it comes before us in the list)
      assert_receive {:lsm_index, :compaction_done, _}, Wait.hang_guard()
      assert subscribers(index) == bridge + 1
      assert LsmIndex.size(index) == 200
      :ok = LsmIndex.unsubscribe(index)
      assert subscribers(index) == bridge
    end
  end

  describe "stats/1" do
    test "stats report compaction and lookup counters" do
      {:ok, index} = LsmIndex.new(lanes: 2, overlay_limit: 64)
      for i <- 1..2_000, do: :ok = LsmIndex.add(index, i, rem(i, 5))
      :ok = LsmIndex.wait_idle(index)
      for i <- 1..100, do: LsmIndex.lookup(index, i)
      for i <- 1..50, do: LsmIndex.lookup(index, -i)
      [_, _] = LsmIndex.lookup_many(index, [1, -1])
      stats = LsmIndex.stats(index)
      assert Enum.sort(Map.keys(stats)) == Enum.sort(@stats_keys)
      assert stats.lookup_hits == 101 and stats.lookup_misses == 51
      assert stats.keys_written >= stats.keys_flushed and stats.keys_flushed > 0
      assert stats.write_amplification >= 1.0
      assert stats.bytes_ingested == 2_000 * 12
      assert stats.pending_jobs == 0 and stats.jobs_done > 0
      assert stats.max_lane_segments <= 4
    end
  end

  # One lane, a pool of one thread parked after its first flush (the NIF's test hold, as
  # tests/background.rs parks it in Rust): 16 keys freeze the overlay again (its flush
  # waits for the worker), 16 more fill the active one; from then on the lane is full.
  defp full_lane(opts) do
    index =
      LsmIndex.new!(
        [lanes: 1, overlay_limit: 16, max_overlay_keys: 16, compaction_threads: 1] ++ opts
      )

    hold = Wait.hold(index)
    :ok = LsmIndex.add_many(index, for(i <- 1..16, do: {{:k, i}, 1}))
    assert %{flushes: 1, keys_flushed: 16} = Wait.await_held()
    :ok = LsmIndex.add_many(index, for(i <- 17..32, do: {{:k, i}, 1}))
    :ok = LsmIndex.add_many(index, for(i <- 33..48, do: {{:k, i}, 1}))
    assert %{frozen_overlays: 1, overlay_keys: 32, stalls: 0} = LsmIndex.stats(index)
    {index, hold}
  end

  # Processes the index delivers reports to now: LsmIndex.Telemetry's bridge (1, when another
  # test loaded a :telemetry module before the index was made, else 0) plus the test's.
  defp subscribers(index), do: LsmIndex.Native.index_subscriber_count(index)

  # A subscriber that sends each report it gets to the caller as {:relayed, info}.
  defp relay do
    parent = self()

    spawn_link(fn ->
      Stream.repeatedly(fn ->
        receive do
          {:lsm_index, :compaction_done, info} -> send(parent, {:relayed, info})
        end
      end)
      |> Stream.run()
    end)
  end

  # The relayed reports, in order, until their keys_written add up to `keys_written`.
  defp await_relayed(keys_written, acc \\ []) do
    if Enum.sum(Enum.map(acc, & &1.keys_written)) >= keys_written do
      Enum.reverse(acc)
    else
      assert_receive {:relayed, info}, Wait.hang_guard()
      await_relayed(keys_written, [info | acc])
    end
  end

  # The job events already in the mailbox, in order, as {kind, info}.
  defp received_events(acc \\ []) do
    receive do
      {:lsm_index, kind, info} when kind in [:compaction_started, :compaction_done] ->
        received_events([{kind, info} | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end

  # The reports already in the mailbox (each was sent before its relayed copy arrived).
  defp received(acc \\ []) do
    receive do
      {:lsm_index, :compaction_done, info} -> received([info | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end
end
