defmodule LsmIndex.LifetimeTest do
  # Not async: the live count is global, and async modules create indexes of their own.
  use ExUnit.Case, async: false

  alias LsmIndex.Test.Wait

  describe "scenario: resource lifetime" do
    test "10,000 indexes are freed when no process holds them" do
      before = LsmIndex.Native.index_live_count()

      Task.async(fn ->
        for _ <- 1..10_000 do
          {:ok, i} = LsmIndex.new(lanes: 1)
          :ok = LsmIndex.add(i, "k", 1)
        end
      end)
      |> Task.await(Wait.hang_guard())

      # freed by the VM once the task's heap is gone: soon, not at once
      :erlang.garbage_collect()

      Wait.until("the 10,000 indexes to be freed", fn ->
        LsmIndex.Native.index_live_count() <= before
      end)
    end
  end
end
