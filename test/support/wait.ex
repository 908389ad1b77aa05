defmodule LsmIndex.Test.Wait do
  @moduledoc false
  # Waiting on events, never on time: each wait is for a condition or a message, bounded only
  # by a long deadline that turns a hang into a failure (a loaded 2-core machine is slow, not
  # wrong). And the compaction hold: a test parks an index's compaction worker (the NIF's
  # `hold` hook) to fill overlays deterministically, as `tests/background.rs` does in Rust.

  import ExUnit.Assertions

  @hang_guard 120_000

  @doc "The hang guard, in ms: how long a wait may take before the test fails."
  def hang_guard, do: @hang_guard

  @doc """
  Polls `fun` until it returns a truthy value and returns that value; flunks with `what`
  after the hang guard. For events that send no message (a lock released, a resource freed).
  """
  def until(what, fun, deadline \\ System.monotonic_time(:millisecond) + @hang_guard) do
    cond do
      result = fun.() ->
        result

      System.monotonic_time(:millisecond) > deadline ->
        flunk("still waiting, after #{div(@hang_guard, 1000)} s, for: #{what}")

      true ->
        Process.sleep(5)
        until(what, fun, deadline)
    end
  end

  @doc """
  `LsmIndex.open/2` once the directory's lock is free: an index dropped by a process that
  exited is freed (and its lock released) by the VM shortly after, not at once.
  """
  def open_when_released(path, opts) do
    until("the lock of #{path} to be released", fn ->
      case LsmIndex.open(path, opts) do
        {:error, :locked} -> nil
        other -> {other}
      end
    end)
    |> elem(0)
  end

  @doc """
  Parks `index`'s compaction worker after each of its next jobs until `release/1` (the index
  needs a pool of its own: `compaction_threads: n`). Each parking sends
  `{:lsm_index, :compaction_held, info}` to the caller (`await_held/0`).
  """
  def hold(%LsmIndex.ShapeRouter{ref: ref}) do
    {:ok, hold} = LsmIndex.Native.router_hold_compaction(ref, self())
    hold
  end

  def hold(index), do: LsmIndex.Native.index_hold_compaction(index, self())

  @doc "The report of the job after which the worker parked."
  def await_held do
    assert_receive {:lsm_index, :compaction_held, info}, @hang_guard
    info
  end

  @doc "Lets the parked worker go on; later jobs do not park."
  def release(hold), do: :ok = LsmIndex.Native.hold_release(hold)
end
