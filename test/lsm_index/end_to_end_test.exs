defmodule LsmIndex.EndToEndTest do
  # The demo's job on a real PostgreSQL (issues 15, 26): the slot streamed over the
  # replication protocol with pgoutput, every transaction routed, shapes added (from a
  # snapshot) and removed while streaming, a column added to todos mid-stream, updates that
  # leave a TOASTed value unchanged, and every live shape's rows checked against PostgreSQL
  # at the end. One throwaway cluster for the module; each run in its own database and slot.
  # `mix test --exclude end_to_end` leaves these out (~40 s).
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO

  alias LsmIndex.Demo.{Driver, Postgres}

  @moduletag :end_to_end
  @moduletag timeout: 300_000

  @small ~w(--shapes 2000 --txns 3000 --rate 0 --truncate-every 700 --alter-at 1200
            --add-rate 40 --progress-ms 60000)

  setup_all do
    pg = Postgres.start(logical: true)
    on_exit(fn -> Postgres.stop(pg) end)
    %{pg: pg}
  end

  describe "Driver.main/1" do
    test "router: 2,000 shapes, 3,000 transactions, every shape consistent", %{pg: pg} do
      {status, out} = demo(pg, "router", @small ++ ~w(--via router))
      assert status == 0, out
      assert_streamed(out)
      assert out =~ "unparseable rows 0, evaluation errors 0"
    end

    test "filter-lsm: the same run through LsmIndex.Filter (:lsm)", %{pg: pg} do
      {status, out} = demo(pg, "filter", @small ++ ~w(--via filter-lsm))
      assert status == 0, out
      assert_streamed(out)
    end

    test "filter-map: the same run through LsmIndex.Filter (:map)", %{pg: pg} do
      {status, out} = demo(pg, "filtermap", @small ++ ~w(--via filter-map))
      assert status == 0, out
      assert_streamed(out)
    end
  end

  describe "SIGKILL and resume" do
    @tag :tmp_dir
    test "a driver killed mid-stream, then between a durable frame and its confirmation, resumes consistent",
         %{pg: pg, tmp_dir: tmp_dir} do
      args =
        ~w(--shapes 2000 --rate 800 --truncate-every 900 --alter-at 1500 --add-rate 20) ++
          ~w(--progress-ms 100) ++
          ["--pg-dir", pg.dir, "--database", "crash", "--state-dir", tmp_dir]

      # the first two runs' writers have no bound but an hour: each run ends only when it is
      # killed, whenever the kill lands
      unbounded = ~w(--seconds 3600)

      # first run: killed once it has routed (and made durable) a good part of the stream
      first = child(args ++ unbounded)
      lines = wait_for(first, &routed_at_least?(&1, 1200), [])
      System.cmd("kill", ["-KILL", Integer.to_string(first.os_pid)])
      {status, out} = finish(first, lines)
      assert status == 137, "the first driver was to be killed mid-stream:\n#{out}"
      refute out =~ "CONSISTENT"

      # second run: resumes, then dies between a durable frame and the slot's confirmation
      second = child(args ++ unbounded ++ ~w(--halt-before-confirm 15))
      {status, out} = finish(second, [])
      assert status == 137, out
      assert out =~ "resumed:"
      assert out =~ "crash point"

      # third run: the slot is behind the log, so it is advanced first; then to the end: the
      # writer stops at 4,000 transactions in all (at once if the first two wrote as many)
      third = child(args ++ ~w(--txns 4000))
      {status, out} = finish(third, [])
      assert status == 0, out
      assert out =~ "is behind the durable shape log: confirmed up to"
      assert out =~ "(resumed after a restart)"
      assert out =~ "0 missing, 0 extra — CONSISTENT"
      assert out =~ "0 ops reached a removed shape"
      assert out =~ "columns learned while streaming: todos.tag"
    end
  end

  # what every run must show: consistent, the truncates, shapes added (with snapshot rows)
  # and removed while streaming and none of them sent a change after it left, unchanged
  # TOASTed values filled from the old rows, and todos.tag learned mid-stream
  defp assert_streamed(out) do
    assert out =~ "0 missing, 0 extra — CONSISTENT"
    assert out =~ "(4 truncates)"
    assert out =~ "0 ops reached a removed shape"
    assert out =~ "columns learned while streaming: todos.tag"

    # the churn runs on the clock (40 adds and 20 removals a second): how many depends on the
    # machine's speed, so only that some happened (their rows are in the consistency check)
    [_, added, removed] =
      Regex.run(~r/([\d,]+) added while streaming \(.*?([\d,]+) removed;/, out)

    assert number(added) >= 1 and number(removed) >= 1, out
    [_, fills] = Regex.run(~r/pgoutput: ([\d,]+) unchanged TOASTed values/, out)
    assert number(fills) > 0, out
  end

  defp number(text), do: text |> String.replace(",", "") |> String.to_integer()

  defp demo(pg, database, args) do
    parent = self()

    out =
      capture_io(fn ->
        send(parent, {:status, Driver.main(args ++ ["--pg-dir", pg.dir, "--database", database])})
      end)

    assert_received {:status, status}
    {status, out}
  end

  # The driver in a VM of its own (a SIGKILL must not take the test down), with this VM's
  # code paths.
  defp child(args) do
    ebin = :lsm_index |> :code.lib_dir() |> Path.join("ebin")
    code = "System.halt(LsmIndex.Demo.Driver.main(System.argv()))"

    port =
      Port.open({:spawn_executable, System.find_executable("elixir")}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        {:line, 65_536},
        args: ["-pa", ebin, "-pa", Mix.Project.consolidation_path(), "-e", code, "--"] ++ args
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    %{port: port, os_pid: os_pid}
  end

  defp wait_for(%{port: port} = child, done?, lines) do
    receive do
      {^port, {:data, {_eol, line}}} ->
        lines = [line | lines]
        if done?.(line), do: lines, else: wait_for(child, done?, lines)

      {^port, {:exit_status, status}} ->
        flunk("the driver ended (#{status}) before it was killed:\n" <> joined(lines))
    after
      120_000 -> flunk("no progress from the driver:\n" <> joined(lines))
    end
  end

  defp finish(%{port: port} = child, lines) do
    receive do
      {^port, {:data, {_eol, line}}} -> finish(child, [line | lines])
      {^port, {:exit_status, status}} -> {status, joined(lines)}
    after
      240_000 -> flunk("the driver did not finish:\n" <> joined(lines))
    end
  end

  defp joined(lines), do: lines |> Enum.reverse() |> Enum.join("\n")

  # a progress line: "[1.2s] written 1,400 txns | routed 1,380 txns, ..."
  defp routed_at_least?(line, n) do
    case Regex.run(~r/routed ([\d,]+) txns/, line) do
      [_, count] -> String.to_integer(String.replace(count, ",", "")) >= n
      nil -> false
    end
  end
end
