defmodule LsmIndex.LifetimeTest do
  # Not async: the live count is global, and async modules create indexes of their own.
  use ExUnit.Case, async: false

  describe "scenario: resource lifetime" do
    test "10,000 indexes are freed when no process holds them" do
      before = LsmIndex.Native.index_live_count()

      Task.async(fn ->
        for _ <- 1..10_000 do
          {:ok, i} = LsmIndex.new(lanes: 1)
          :ok = LsmIndex.add(i, "k", 1)
        end
      end)
      |> Task.await(60_000)

      :erlang.garbage_collect()
      assert wait_until(fn -> LsmIndex.Native.index_live_count() <= before end)
    end
  end

  defp wait_until(fun, tries \\ 100) do
    cond do
      fun.() -> true
      tries == 0 -> false
      true -> Process.sleep(20) && wait_until(fun, tries - 1)
    end
  end
end
