defmodule LsmIndex.CompactionTest do
  use ExUnit.Case, async: true

  @stats_keys ~w(keys lanes segments segments_per_level max_lane_segments segment_bytes
    mph_heap_bytes overlay_keys overlay_bytes frozen_overlays pending_drops ops bytes_ingested
    keys_flushed keys_written bytes_written flushes merges write_amplification pending_jobs
    jobs_done last_job_us compaction_busy_us compaction_threads stalls lookup_hits
    lookup_misses prefilter_rejects counted_handles handle_count_bytes)a

  describe "new/1" do
    test "policies, pools and overload modes" do
      for opts <- [
            [policy: :leveled],
            [policy: :triangular, size_ratio: 2],
            [compaction_threads: 1],
            [compaction_threads: :shared],
            [overload: :error, max_overlay_keys: 20_000]
          ] do
        assert {:ok, index} = LsmIndex.new(opts)
        for i <- 1..500, do: :ok = LsmIndex.add(index, i, 1)
        assert LsmIndex.size(index) == 500
      end

      {:ok, index} = LsmIndex.new(compaction_threads: 3)
      assert LsmIndex.stats(index).compaction_threads == 3
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

  describe "scenario: back-pressure" do
    test "overload: :error refuses writes to a full lane and writes nothing of them" do
      {:ok, index} =
        LsmIndex.new(
          lanes: 1,
          overlay_limit: 16,
          max_overlay_keys: 16,
          compaction_threads: 1,
          overload: :error
        )

      # the writer outruns a one-thread pool building 16-key segments
      results =
        for i <- 1..20_000 do
          {i, LsmIndex.add_many(index, [{{:k, i}, 1}, {{:k2, i}, 2}])}
        end

      refused = for {i, {:error, :overloaded}} <- results, do: i
      accepted = for {i, :ok} <- results, do: i
      assert refused != [], "no write was ever refused"
      assert length(accepted) + length(refused) == 20_000
      :ok = LsmIndex.wait_idle(index)

      for i <- Enum.take(refused, 50) do
        assert LsmIndex.lookup(index, {:k, i}) == []
        assert LsmIndex.lookup(index, {:k2, i}) == []
      end

      for i <- Enum.take_every(accepted, 97), do: assert(LsmIndex.lookup(index, {:k, i}) == [1])
      assert LsmIndex.size(index) == 2 * length(accepted)
      assert LsmIndex.stats(index).stalls >= length(refused)
    end

    test "overload: :wait (default) slows writers and loses nothing" do
      {:ok, index} =
        LsmIndex.new(lanes: 1, overlay_limit: 16, max_overlay_keys: 16, compaction_threads: 1)

      for i <- 1..5_000, do: :ok = LsmIndex.add(index, i, 1)
      :ok = LsmIndex.add_many(index, for(i <- 5_001..8_000, do: {i, 2}))
      :ok = LsmIndex.drop_handle(index, 7)
      assert LsmIndex.size(index) == 8_000
      assert LsmIndex.lookup(index, 4_999) == [1]
      assert LsmIndex.lookup(index, 7_999) == [2]
    end
  end

  describe "subscribe/2" do
    test "each background job is reported to subscribers" do
      {:ok, index} = LsmIndex.new(lanes: 2, overlay_limit: 32)
      :ok = LsmIndex.subscribe(index)
      :ok = LsmIndex.subscribe(index, self())
      for i <- 1..1_000, do: :ok = LsmIndex.add(index, i, 1)
      :ok = LsmIndex.compact(index)

      assert_receive {:lsm_index, :compaction_done, info}, 5_000

      assert %{lane: lane, flushes: _, merges: _, keys_flushed: _, keys_written: w} = info
      assert lane in [0, 1] and w > 0
      assert info.bytes_written > 0 and info.segments >= 1 and info.duration_us >= 0

      :ok = LsmIndex.wait_idle(index)
      reports = drain([info])
      stats = LsmIndex.stats(index)
      # subscribed twice, delivered once
      assert Enum.sum(Enum.map(reports, & &1.keys_written)) == stats.keys_written

      :ok = LsmIndex.unsubscribe(index)
      for i <- 1..1_000, do: :ok = LsmIndex.add(index, {:more, i}, 1)
      :ok = LsmIndex.compact(index)
      refute_receive {:lsm_index, :compaction_done, _}, 100
    end

    test "a subscriber that exits is forgotten" do
      {:ok, index} = LsmIndex.new(lanes: 1, overlay_limit: 8)
      {pid, ref} = spawn_monitor(fn -> :ok end)
      assert_receive {:DOWN, ^ref, _, _, _}
      :ok = LsmIndex.subscribe(index, pid)
      for i <- 1..200, do: :ok = LsmIndex.add(index, i, 1)
      :ok = LsmIndex.compact(index)
      assert LsmIndex.size(index) == 200
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

  describe "scenario: LsmIndex.Telemetry events" do
    test "emits [:lsm_index, :compaction, :stop] when :telemetry is loaded" do
      unless Code.ensure_loaded?(:telemetry) do
        # a stand-in with the one function the bridge calls (the real one needs hex)
        Code.compile_string("""
        defmodule :telemetry do
          def execute(event, measurements, metadata) do
            for pid <- :persistent_term.get(:lsm_index_telemetry_test, []),
                do: send(pid, {:telemetry, event, measurements, metadata})
            :ok
          end
        end
        """)
      end

      :persistent_term.put(:lsm_index_telemetry_test, [self()])
      {:ok, index} = LsmIndex.new(lanes: 1, overlay_limit: 16)
      for i <- 1..200, do: :ok = LsmIndex.add(index, i, 1)
      :ok = LsmIndex.compact(index)

      # the bridge serves every index created while :telemetry is loaded (other tests' too):
      # wait for an event shaped like one of ours (one lane)
      assert_receive {:telemetry, [:lsm_index, :compaction, :stop], measurements,
                      %{lane: 0} = metadata},
                     5_000

      assert measurements.duration >= 0 and measurements.keys_written > 0
      assert metadata.keys_written == measurements.keys_written
      assert LsmIndex.Telemetry.event() == [:lsm_index, :compaction, :stop]
    after
      :persistent_term.erase(:lsm_index_telemetry_test)
    end
  end

  defp drain(acc) do
    receive do
      {:lsm_index, :compaction_done, info} -> drain([info | acc])
    after
      200 -> acc
    end
  end
end
