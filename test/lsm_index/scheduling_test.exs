defmodule LsmIndex.SchedulingTest do
  # Not async: the system monitor is VM-wide.
  use ExUnit.Case, async: false

  test "writes, lookups and drops never hold a normal scheduler for 1 ms" do
    {:ok, index} = LsmIndex.new(lanes: 4, overlay_limit: 4_096)
    previous = :erlang.system_monitor(self(), [{:long_schedule, 1}])

    try do
      worker =
        Task.async(fn ->
          for i <- 1..60_000 do
            :ok = LsmIndex.add(index, i, rem(i, 50))
            if rem(i, 3) == 0, do: :ok = LsmIndex.remove(index, i - 1, rem(i - 1, 50))
            if rem(i, 1_000) == 0, do: :ok = LsmIndex.drop_handle(index, rem(i, 7))
            LsmIndex.lookup(index, i - 100)
          end

          batch = for i <- 1..5_000, do: {i, 99}
          :ok = LsmIndex.add_many(index, batch)
          :ok = LsmIndex.remove_many(index, Enum.take(batch, 900))
          LsmIndex.lookup_many(index, Enum.to_list(1..5_000))
          self()
        end)

      pid = worker.pid
      Task.await(worker, 120_000)
      :ok = LsmIndex.wait_idle(index)
      assert LsmIndex.stats(index).flushes > 10
      refute_received {:monitor, ^pid, :long_schedule, _info}
    after
      case previous do
        :undefined -> :erlang.system_monitor(:undefined)
        {monitor, opts} -> :erlang.system_monitor(monitor, opts)
      end
    end
  end
end
