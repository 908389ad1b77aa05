defmodule LsmIndex.Test.CallTiming do
  @slack 8

  @moduledoc """
  The "no NIF call held its normal scheduler" check of the scheduling and stress tests, on
  the NIF's opt-in call timing (`timing.rs`).

  Each timed call's thread CPU time is measured. On this VM that time also holds stretches
  in which the virtual CPU ran nothing of the guest's and the hypervisor did not report steal
  (DESIGN.md, "Call timing outliers"): ~0.5 such stretches of 4-10 ms per second of busy
  CPU, on whatever thread is running — a 1 µs lookup, a NIF that does nothing, a C program
  that only reads clocks — and 1-7 ms of each is charged to that thread. So a call over
  1 ms is not by itself our code holding the scheduler. The tests call `timing_noop/1` (a
  NIF that spins a few thousand empty turns, timed like the others) beside the real calls,
  as the control: it sees the VM's stalls at the same rate per second of CPU as the real
  calls and none of our code.

  A NIF that really holds its scheduler does so on every call that takes the slow path: a
  batch applied inline puts most write calls over 1 ms, a slow lookup path every lookup.
  The VM puts a handful per run (0-4 in each of 19 stress runs beside other builds, 0-2 in the
  scheduling test). So each NIF may have at most #{@slack} calls over 1 ms plus four times
  what the control saw, scaled to that NIF's CPU time: the bound grows with the VM's stalls
  (if the host stalls ten times as often, the control sees ten times as many) and never with
  our code's. By chance: with the stalls at the worst rate measured (2 per run in one NIF)
  and none in the control, nine in that NIF is a 1-in-4,000 run; a NIF slow on every call
  of a kind called a few dozen times or more fails at once.
  """

  @doc """
  `{nif, calls over 1 ms, allowed}` for each timed NIF except the control, from
  `LsmIndex.Native.timing_report/0`.
  """
  @spec over_1ms(map()) :: [{String.t(), non_neg_integer(), float()}]
  def over_1ms(timing) do
    control = Map.get(timing.by_nif, "timing_noop", %{cpu_over_1ms: 0, cpu_us: 0})
    # the VM's stalls per µs of CPU, as the control saw them
    rate = control.cpu_over_1ms / max(control.cpu_us, 1)

    for {nif, c} <- Enum.sort(timing.by_nif), nif != "timing_noop" do
      {nif, c.cpu_over_1ms, Float.round(@slack + 4 * rate * c.cpu_us, 1)}
    end
  end

  @doc "The NIFs with more calls over 1 ms than the VM's stalls explain (see the moduledoc)."
  @spec held(map()) :: [{String.t(), non_neg_integer(), float()}]
  def held(timing), do: for({_, over, allowed} = row <- over_1ms(timing), over > allowed, do: row)

  @doc "One line per timed NIF, then each call over 1 ms, for the test output."
  @spec table(map()) :: String.t()
  def table(timing) do
    allowed = Map.new(over_1ms(timing), fn {nif, _, allowed} -> {nif, allowed} end)

    rows =
      for {nif, c} <- Enum.sort(timing.by_nif) do
        each = Float.round(c.cpu_us / max(c.calls, 1), 2)
        bound = if a = allowed[nif], do: ", at most #{a}", else: ": the control"

        "  #{String.pad_trailing(nif, 21)} #{c.calls} calls, #{each} us CPU each, max " <>
          "#{c.max_cpu_us} us; #{c.cpu_over_1ms} over 1 ms#{bound}"
      end

    outliers =
      for o <- timing.outliers do
        "  over 1 ms: #{o.nif} at #{o.start_us} us (CLOCK_MONOTONIC): CPU #{o.cpu_us} us, " <>
          "wall #{o.wall_us} us, CPUs #{inspect(o.cpus)}, faults minor/major " <>
          "#{inspect(o.minor_faults)}/#{inspect(o.major_faults)}, switches " <>
          "voluntary/involuntary #{inspect(o.voluntary_switches)}/" <>
          "#{inspect(o.involuntary_switches)}"
      end

    Enum.join(rows ++ outliers, "\n")
  end
end
