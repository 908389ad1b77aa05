defmodule LsmIndex.Demo.Psql do
  @moduledoc """
  One long-lived `psql` session through a Port (the demo's client library: hex, and so
  Postgrex, is out of reach here). Not public API.

  `run/2` writes SQL to the session's standard input followed by `\\echo` of a unique
  sentinel and returns the output lines up to it (`psql -X -A -t -q`: one line per row,
  columns separated by `|`). psql stops at the first error (`ON_ERROR_STOP`): `run/2` then
  raises with psql's message. The session belongs to the process that opened it. When the VM
  dies, psql reads the end of its input and exits, ending its transaction.
  """

  alias LsmIndex.Demo.Postgres

  defstruct [:port, :os_pid]

  @typedoc "An open session."
  @type t :: %__MODULE__{port: port(), os_pid: non_neg_integer()}

  # psql prints a row as one line; longer ones arrive in pieces
  @line_bytes 1_048_576

  @doc "Opens a session on `database` (warnings and errors only, UTC, ISO dates)."
  @spec open(Postgres.t(), String.t()) :: t()
  def open(pg, database \\ "postgres") do
    {program, args} = Postgres.psql(pg, database)

    port =
      Port.open({:spawn_executable, program}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        :use_stdio,
        {:line, @line_bytes},
        args: args
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    session = %__MODULE__{port: port, os_pid: os_pid}
    run(session, "SET client_min_messages = warning; SET TimeZone = 'UTC';")
    session
  end

  @doc """
  Runs `sql` (complete statements, `;`-terminated, or psql meta-commands on lines of their
  own) and returns the lines it printed; raises with psql's output when psql stops.
  """
  @spec run(t(), iodata()) :: [String.t()]
  def run(%__MODULE__{port: port}, sql) do
    sentinel = "__lsm_demo_#{System.unique_integer([:positive])}__"
    Port.command(port, [sql, "\n\\echo ", sentinel, "\n"])
    collect(port, sentinel, [], [])
  end

  defp collect(port, sentinel, partial, lines) do
    receive do
      {^port, {:data, {:eol, line}}} ->
        case IO.iodata_to_binary([partial | line]) do
          ^sentinel -> Enum.reverse(lines)
          line -> collect(port, sentinel, [], [line | lines])
        end

      {^port, {:data, {:noeol, chunk}}} ->
        collect(port, sentinel, [partial | chunk], lines)

      {^port, {:exit_status, status}} ->
        output = lines |> Enum.reverse() |> Enum.take(-20) |> Enum.join("\n")
        raise "psql stopped (exit #{status}):\n#{output}#{partial}"
    end
  end

  @doc "Ends the session (psql reads the end of its input and exits)."
  @spec close(t()) :: :ok
  def close(%__MODULE__{port: port}) do
    if Port.info(port) != nil, do: Port.close(port)
    :ok
  catch
    :error, :badarg -> :ok
  end

  @doc "The integers of an `int8[]` as psql prints it (`{1,2,3}`; `\"\"` for NULL: none)."
  @spec int_array(String.t()) :: [integer()]
  def int_array(""), do: []

  def int_array("{" <> rest),
    do: rest |> String.trim_trailing("}") |> String.split(",") |> Enum.map(&String.to_integer/1)

  @doc "A SQL string literal of `text` (standard-conforming: quotes doubled)."
  @spec literal(String.t()) :: String.t()
  def literal(text), do: "'" <> String.replace(text, "'", "''") <> "'"
end
