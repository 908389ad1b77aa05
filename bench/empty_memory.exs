# What an empty LsmIndex and an empty ShapeRouter cost (DESIGN.md, "Memory"): N of each
# (default 10,000) made in this VM, resident memory (VmRSS) and the BEAM's own accounting
# (`:erlang.memory/1`, where NIF resources count as binaries) before and after, every
# process garbage collected.
#   mix run bench/empty_memory.exs [N]
alias LsmIndex.ShapeRouter

n = System.argv() |> List.first("10000") |> String.to_integer()

measure = fn ->
  for p <- Process.list(), do: :erlang.garbage_collect(p)
  Process.sleep(200)
  [_, kb] = Regex.run(~r/VmRSS:\s+(\d+) kB/, File.read!("/proc/self/status"))
  %{rss: String.to_integer(kb) * 1024, beam: :erlang.memory(:total)}
end

report = fn what, make ->
  # one made first, so that code loading and first-use allocations are not counted
  _warm = make.(0)
  before = measure.()
  held = for i <- 1..n, do: make.(i)
  after_ = measure.()

  IO.puts(
    "#{what}: #{div(after_.rss - before.rss, n)} B resident each " <>
      "(BEAM accounting #{div(after_.beam - before.beam, n)} B), #{n} made"
  )

  length(held)
end

IO.puts(
  "machine: #{:erlang.system_info(:logical_processors)} cores; OTP #{System.otp_release()}, " <>
    "Elixir #{System.version()}; #{DateTime.utc_now() |> DateTime.truncate(:second)}"
)

report.("empty LsmIndex", fn _ -> elem(LsmIndex.new(), 1) end)
report.("empty ShapeRouter", fn i -> ShapeRouter.new!("t", i, [{"id", :int8}]) end)
