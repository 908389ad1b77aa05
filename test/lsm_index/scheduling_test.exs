defmodule LsmIndex.SchedulingTest do
  @moduledoc false
  # Writes, lookups and drops from one process while the pool compacts: no normal-scheduler
  # NIF call may hold its scheduler for 1 ms. Measured as each call's thread CPU time inside
  # the NIF (timing.rs), with `:erlang.system_monitor/2` long schedules of the process
  # printed beside it: on this 2-vCPU VM the monitor also fires when the OS preempts the
  # scheduler thread (compaction threads, hypervisor steal), which is not the NIF holding it
  # (see stress_test.exs for the measurements). The VM also charges stalls of its virtual
  # CPU to whatever call is running; a NIF that does nothing, called beside the others, is
  # the control that bounds how many calls over 1 ms those explain (`CallTiming`). Not
  # async: the monitor and timing are VM-wide.
  use ExUnit.Case, async: false
  alias LsmIndex.Test.CallTiming

  @moduletag timeout: 600_000

  # turns of the control's empty loop: about a microsecond, like a lookup
  @control_spins 3_000

  describe "scenario: scheduling" do
    test "writes, lookups, drops and routes never hold a normal scheduler for 1 ms" do
      {:ok, index} = LsmIndex.new(lanes: 4, overlay_limit: 4_096)
      previous = :erlang.system_monitor(self(), [{:long_schedule, 1}])
      :ok = LsmIndex.Native.timing_enable(:detail)

      try do
        worker =
          Task.async(fn ->
            for i <- 1..60_000 do
              :ok = LsmIndex.Native.timing_noop(@control_spins)
              :ok = LsmIndex.add(index, i, rem(i, 50))
              if rem(i, 3) == 0, do: :ok = LsmIndex.remove(index, i - 1, rem(i - 1, 50))
              if rem(i, 1_000) == 0, do: :ok = LsmIndex.drop_handle(index, rem(i, 7))
              LsmIndex.lookup(index, i - 100)
            end

            batch = for i <- 1..5_000, do: {i, 99}
            :ok = LsmIndex.add_many(index, batch)
            :ok = LsmIndex.remove_many(index, Enum.take(batch, 900))
            LsmIndex.lookup_many(index, Enum.to_list(1..5_000))
            LsmIndex.lookup_many_packed(index, LsmIndex.pack_keys(Enum.to_list(1..5_000)))

            # packed batches at the normal-scheduler bound (500 keys)
            for first <- 1..5_000//500 do
              packed = LsmIndex.pack_keys(Enum.to_list(first..(first + 499)))
              LsmIndex.lookup_many_packed(index, packed)
            end

            route_a_lot()
            filter_a_lot()
            self()
          end)

        pid = worker.pid
        Task.await(worker, :infinity)
        timing = LsmIndex.Native.timing_report()
        :ok = LsmIndex.wait_idle(index)
        assert LsmIndex.stats(index).flushes > 10
        long = for {:monitor, ^pid, :long_schedule, info} <- drain([]), do: info[:timeout]

        IO.puts(
          "\nscheduling: #{timing.calls} NIF calls, max CPU #{timing.max_cpu_us} us, " <>
            "max wall #{timing.max_wall_us} us; long_schedule events #{length(long)}\n" <>
            CallTiming.table(timing)
        )

        # every call of the loop was timed (one answered :wait is retried dirty, untimed; at
        # least: timing counts the whole VM's calls)
        calls = fn nif -> get_in(timing, [:by_nif, nif, :calls]) || 0 end
        assert calls.("add") >= 60_000 and calls.("remove") >= 20_000
        assert calls.("lookup") >= 60_000 and calls.("drop_handle") >= 60
        assert calls.("timing_noop") == 60_000
        # the 5,000-key packed batch went dirty (untimed), the ten of 500 did not
        assert calls.("lookup_many_packed") == 10
        # Filter :lsm: one NIF call per change routed one by one (nothing else calls it here:
        # the sync tests run alone), and a transaction in as few calls as its time slices
        assert calls.("router_set_route") == 3_000
        assert calls.("router_set_add") == 3_300
        assert calls.("router_set_route_many") in 1..3_000
        assert calls.("router_route_many_packed") in 2..30_000

        assert CallTiming.held(timing) == [],
               "NIF calls held a normal scheduler ({nif, over 1 ms, allowed}): " <>
                 inspect(CallTiming.held(timing))
      after
        LsmIndex.Native.timing_enable(false)

        case previous do
          :undefined -> :erlang.system_monitor(:undefined)
          {monitor, opts} -> :erlang.system_monitor(monitor, opts)
        end
      end
    end
  end

  describe "CallTiming.held/1" do
    test "tells a NIF slow on every call from the VM's stalls" do
      control = %{calls: 60_000, cpu_over_1ms: 0, cpu_us: 100_000, max_cpu_us: 300}
      lookup = %{calls: 60_000, cpu_over_1ms: 2, cpu_us: 90_000, max_cpu_us: 6_000}
      timing = %{by_nif: %{"timing_noop" => control, "lookup" => lookup}, outliers: []}
      # a few stalls, none in the control: the VM
      assert CallTiming.held(timing) == []
      # a drop path slow on each of its 60 calls
      slow = %{calls: 60, cpu_over_1ms: 60, cpu_us: 120_000, max_cpu_us: 2_500}
      timing = put_in(timing, [:by_nif, "drop_handle"], slow)
      assert [{"drop_handle", 60, _}] = CallTiming.held(timing)
      # the VM stalling ten times as often: the control sees it too
      stalls = fn c, n -> %{c | cpu_over_1ms: n} end

      timing = %{
        timing
        | by_nif: %{"timing_noop" => stalls.(control, 20), "lookup" => stalls.(lookup, 25)}
      }

      assert CallTiming.held(timing) == []
    end
  end

  # A long transaction through route_many and route_many_packed (each handed back every
  # ~0.5 ms), shape adds, routes.
  defp route_a_lot do
    alias LsmIndex.ShapeRouter
    {:ok, r} = ShapeRouter.new("t", "x", [{"user_id", :int8}, {"status", :text}])
    for i <- 1..3_000, do: :ok = ShapeRouter.add_shape(r, i, "user_id = #{i} AND status <> 'x'")
    for i <- 1..300, do: :ok = ShapeRouter.add_shape(r, 10_000 + i, "status LIKE '%#{i}%'")
    changes = for i <- 1..30_000, do: {:insert, %{"user_id" => "#{i}", "status" => "s#{i}"}}
    listed = ShapeRouter.route_many(r, changes)
    assert length(listed) == 30_000
    # the same transaction packed: routed in batches, handed back every ~0.5 ms
    assert ShapeRouter.route_many_packed(r, ShapeRouter.pack_changes(r, changes)) == listed
    for c <- Enum.take(changes, 3_000), do: ShapeRouter.route(r, c)
  end

  # Filter :lsm: shape adds, a long transaction through affected_shapes_many, routes.
  defp filter_a_lot do
    alias LsmIndex.Filter
    cols = %{"user_id" => :int8, "status" => :text}
    table = {"public", "todos"}
    shape = fn where -> %{table: table, columns: cols, where: where} end
    f = Filter.new(index: :lsm)

    f =
      Enum.reduce(
        1..3_000,
        f,
        &Filter.add_shape(&2, &1, shape.("user_id = #{&1} AND status <> 'x'"))
      )

    f =
      Enum.reduce(1..300, f, &Filter.add_shape(&2, 10_000 + &1, shape.("status LIKE '%#{&1}%'")))

    changes =
      for i <- 1..30_000, do: {:insert, table, %{"user_id" => "#{i}", "status" => "s#{i}"}}

    assert length(Filter.affected_shapes_many(f, changes)) == 30_000
    for c <- Enum.take(changes, 3_000), do: Filter.affected_shapes(f, c)
  end

  defp drain(acc) do
    receive do
      {:monitor, _, _, _} = m -> drain([m | acc])
    after
      0 -> acc
    end
  end
end
