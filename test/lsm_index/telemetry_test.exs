defmodule LsmIndex.TelemetryTest do
  # Not async: spans are switched on for the whole VM (a :persistent_term) and a stand-in
  # :telemetry module is defined (the real one needs hex), then removed again, so the async
  # tests (which run before this module) and later ones see the library as without it.
  use ExUnit.Case, async: false

  alias LsmIndex.{ShapeRouter, Telemetry}
  alias LsmIndex.Test.Wait

  @cols [{"id", :int8}, {"user_id", :int8}]

  setup_all do
    stand_in = not Code.ensure_loaded?(:telemetry)

    if stand_in do
      # the one function the library calls: each event goes to the registered test pids
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

    assert Telemetry.refresh()

    on_exit(fn ->
      if stand_in do
        :code.purge(:telemetry)
        :code.delete(:telemetry)
        :code.purge(:telemetry)
      end

      Telemetry.refresh()
    end)
  end

  setup do
    :persistent_term.put(:lsm_index_telemetry_test, [self()])
    on_exit(fn -> :persistent_term.erase(:lsm_index_telemetry_test) end)
  end

  describe "lookup_many/2 spans" do
    test "a :start and a :stop sharing a span context, with the span measurements" do
      {:ok, index} = LsmIndex.new()
      :ok = LsmIndex.add_many(index, [{1, 7}, {2, 8}])
      assert LsmIndex.lookup_many(index, [1, 2, 3]) == [[7], [8], []]

      {start, start_meta} = span_event(:lookup_many, :start, index)
      {stop, stop_meta} = span_event(:lookup_many, :stop, index)
      assert Enum.sort(Map.keys(start)) == [:monotonic_time, :system_time]
      assert Enum.sort(Map.keys(stop)) == [:duration, :monotonic_time]
      assert is_integer(stop.duration) and stop.duration >= 0
      assert stop.monotonic_time >= start.monotonic_time
      assert %{index: ^index, key_count: 3, telemetry_span_context: ctx} = start_meta
      assert is_reference(ctx)
      assert stop_meta == start_meta
    end

    test "a call that raises emits :exception with kind, reason and stacktrace, then raises" do
      {:ok, index} = LsmIndex.new()
      :ok = LsmIndex.close(index)

      error = assert_raise ArgumentError, ~r/closed/, fn -> LsmIndex.lookup_many(index, [1]) end

      {_start, %{telemetry_span_context: ctx}} = span_event(:lookup_many, :start, index)
      {measurements, meta} = span_event(:lookup_many, :exception, index)
      assert Enum.sort(Map.keys(measurements)) == [:duration, :monotonic_time]
      assert %{kind: :error, reason: ^error, telemetry_span_context: ^ctx} = meta
      assert [_ | _] = meta.stacktrace
      refute_received {:telemetry, [:lsm_index, :lookup_many, :stop], _, %{index: ^index}}
    end
  end

  describe "route spans" do
    setup do
      {:ok, router} = ShapeRouter.new("tenant", {"public", "todos"}, @cols)
      :ok = ShapeRouter.add_shape(router, 1, "user_id = 7")
      %{router: router}
    end

    test "route_many/3: one span per call, naming the change count", %{router: router} do
      changes = [{:insert, %{"user_id" => "7"}}, {:insert, %{"user_id" => "8"}}, :truncate]
      assert ShapeRouter.route_many(router, changes) == [[1], [], [1]]

      {start, meta} = span_event(:route, :start, router)
      {stop, stop_meta} = span_event(:route, :stop, router)
      assert %{change_count: 3, sample_every: 1, telemetry_span_context: ctx} = meta
      assert %{telemetry_span_context: ^ctx} = stop_meta
      assert stop.monotonic_time >= start.monotonic_time
      refute_received {:telemetry, [:lsm_index, :route, _], _, %{router: ^router}}
    end

    test "route/2 and route_with_moves/2 are sampled: one call in :telemetry_route_sample",
         %{router: router} do
      put_sample(4)
      change = {:insert, %{"user_id" => "7"}}

      # in a fresh process: its cycle starts at a random call, but 20 calls hold 5 samples
      Task.async(fn ->
        for _ <- 1..10, do: assert(ShapeRouter.route(router, change) == [1])
        for _ <- 1..10, do: assert(ShapeRouter.route_with_moves(router, change) == {[1], []})
      end)
      |> Task.await(Wait.hang_guard())

      starts = drain(:start, router)
      stops = drain(:stop, router)
      assert length(starts) == 5 and length(stops) == 5

      for {_m, meta} <- starts,
          do: assert(%{change_count: 1, sample_every: 4} = meta)

      assert Enum.map(starts, &elem(&1, 1).telemetry_span_context) ==
               Enum.map(stops, &elem(&1, 1).telemetry_span_context)
    end

    test "a route that raises emits :exception", %{router: router} do
      put_sample(1)
      :ok = ShapeRouter.close(router)
      error = assert_raise ArgumentError, fn -> ShapeRouter.route(router, :truncate) end
      {_start, %{telemetry_span_context: ctx}} = span_event(:route, :start, router)
      {_m, meta} = span_event(:route, :exception, router)
      assert %{kind: :error, reason: ^error, telemetry_span_context: ^ctx} = meta
    end
  end

  describe "Filter with index: :lsm" do
    test "affected_shapes_many/2 is one span naming the filter; affected_shapes/2 is sampled" do
      put_sample(1)
      shape = %{table: {"public", "todos"}, columns: @cols, where: "user_id = 7"}
      filter = LsmIndex.Filter.add_shape(LsmIndex.Filter.new(index: :lsm), 1, shape)
      row = {:insert, {"public", "todos"}, %{"id" => "1", "user_id" => "7"}}

      assert LsmIndex.Filter.affected_shapes_many(filter, [row, row]) ==
               [MapSet.new([1]), MapSet.new([1])]

      assert_receive {:telemetry, [:lsm_index, :route, :start], _, %{filter: ^filter} = meta}
      assert %{change_count: 2, sample_every: 1, telemetry_span_context: ctx} = meta
      assert_receive {:telemetry, [:lsm_index, :route, :stop], _, %{telemetry_span_context: ^ctx}}

      assert LsmIndex.Filter.affected_shapes(filter, row) == MapSet.new([1])
      assert_receive {:telemetry, [:lsm_index, :route, :start], _, %{filter: ^filter} = one}
      assert %{change_count: 1, sample_every: 1} = one
      assert_receive {:telemetry, [:lsm_index, :route, :stop], _, %{filter: ^filter}}
    end
  end

  describe "compaction spans (the bridge)" do
    test "each job's :start, then its :stop with the report and the same span context" do
      {:ok, index} = LsmIndex.new(lanes: 1, overlay_limit: 16)
      for i <- 1..200, do: :ok = LsmIndex.add(index, i, 1)
      :ok = LsmIndex.compact(index)

      # the bridge serves every index made while spans were on (earlier tests' too): wait for
      # a stop shaped like one of ours (one lane, 200 keys flushed in all), then its start
      {stop, meta} =
        await_compaction(:stop, fn meta -> meta.lane == 0 and meta.keys_flushed > 0 end)

      assert %{job: job, telemetry_span_context: {Telemetry, job} = ctx} = meta
      assert stop.duration >= 0 and stop.keys_written > 0 and stop.keys_flushed > 0

      assert Enum.sort(Map.keys(stop)) ==
               [:bytes_written, :duration, :keys_flushed, :keys_written, :monotonic_time]

      assert meta.keys_written == stop.keys_written
      assert_received {:telemetry, [:lsm_index, :compaction, :start], start, %{job: ^job} = sm}
      assert Enum.sort(Map.keys(start)) == [:monotonic_time, :system_time]
      assert sm == %{job: job, lane: 0, telemetry_span_context: ctx}
      assert Telemetry.event() == [:lsm_index, :compaction, :stop]
      assert [:lsm_index, :compaction, :exception] in Telemetry.events()
    end

    @tag :tmp_dir
    test "a failed job emits :exception (and subscribe/3 hears :compaction_failed)",
         %{tmp_dir: dir} do
      index = damaged_index(dir)
      :ok = LsmIndex.subscribe(index, self(), events: [:started, :failed])
      :ok = LsmIndex.add(index, 1_001, 1)
      assert {:error, _} = LsmIndex.compact(index)

      assert_receive {:lsm_index, :compaction_started, %{job: job, lane: 0}}, Wait.hang_guard()
      assert_receive {:lsm_index, :compaction_failed, failed}, Wait.hang_guard()
      assert %{job: ^job, lane: 0, duration_us: us, error: {kind, message}} = failed
      assert kind in [:checksum_mismatch, :corrupt] and is_integer(us)
      assert message =~ "records section"

      {measurements, meta} = await_compaction(:exception, &(&1.job == job))
      assert Enum.sort(Map.keys(measurements)) == [:duration, :monotonic_time]
      assert %{kind: :error, stacktrace: [], telemetry_span_context: {Telemetry, ^job}} = meta
      assert %LsmIndex.Error{reason: ^kind, message: ^message} = meta.reason
      assert_received {:telemetry, [:lsm_index, :compaction, :start], _, %{job: ^job}}
      LsmIndex.close(index)
    end
  end

  describe "refresh/0" do
    test "spans are off while :telemetry is absent: calls emit nothing" do
      :persistent_term.put(:lsm_index_telemetry, false)
      on_exit(fn -> Telemetry.refresh() end)
      refute Telemetry.enabled?()
      {:ok, index} = LsmIndex.new()
      assert LsmIndex.lookup_many(index, [1]) == [[]]
      refute_received {:telemetry, _, _, _}
      assert Telemetry.refresh() and Telemetry.enabled?()
    end

    test ":telemetry_route_sample must be a positive integer" do
      put_sample(0)
      assert_raise ArgumentError, ~r/:telemetry_route_sample/, fn -> Telemetry.refresh() end
    end
  end

  # The one event `event` of span `name` whose metadata names `who` (an index or a router).
  defp span_event(name, event, %ShapeRouter{} = router) do
    assert_receive {:telemetry, [:lsm_index, ^name, ^event], m, %{router: ^router} = meta}
    {m, meta}
  end

  defp span_event(name, event, index) do
    assert_receive {:telemetry, [:lsm_index, ^name, ^event], m, %{index: ^index} = meta}
    {m, meta}
  end

  defp drain(event, router, acc \\ []) do
    receive do
      {:telemetry, [:lsm_index, :route, ^event], m, %{router: ^router} = meta} ->
        drain(event, router, [{m, meta} | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end

  # The first compaction event `event` whose metadata `fun` accepts (others are dropped).
  defp await_compaction(event, fun) do
    assert_receive {:telemetry, [:lsm_index, :compaction, ^event], m, meta}, Wait.hang_guard()
    if fun.(meta), do: {m, meta}, else: await_compaction(event, fun)
  end

  defp put_sample(n) do
    previous = Application.fetch_env(:lsm_index, :telemetry_route_sample)
    Application.put_env(:lsm_index, :telemetry_route_sample, n)

    on_exit(fn ->
      case previous do
        {:ok, v} -> Application.put_env(:lsm_index, :telemetry_route_sample, v)
        :error -> Application.delete_env(:lsm_index, :telemetry_route_sample)
      end

      Telemetry.refresh()
    end)

    if n > 0, do: Telemetry.refresh()
  end

  # A persistent index (verify: false) whose one segment's records section is damaged: its
  # next merge fails (as in persist_test.exs).
  defp damaged_index(dir) do
    opts = [lanes: 1, overlay_limit: 64]
    {:ok, index} = LsmIndex.open(dir, opts)
    :ok = LsmIndex.add_many(index, for(i <- 1..1_000, do: {i, rem(i, 9)}))
    :ok = LsmIndex.compact(index)
    :ok = LsmIndex.close(index)
    [file] = Path.wildcard(Path.join(dir, "segments/lane-*/*.seg"))
    bytes = File.read!(file)
    <<_::binary-size(48 + 2 * 24), at::little-64, len::little-64, _::binary>> = bytes
    <<head::binary-size(at), records::binary-size(len), tail::binary>> = bytes
    flipped = for <<b <- records>>, into: <<>>, do: <<Bitwise.bxor(b, 0xFF)>>
    File.write!(file, head <> flipped <> tail)
    {:ok, index} = LsmIndex.open(dir, [verify: false] ++ opts)
    index
  end
end
