defmodule LsmIndex.Demo.Replication do
  @moduledoc """
  A client of PostgreSQL's streaming replication protocol over the cluster's unix socket:
  the demo reads its logical replication slot the way the host sync service does. Not
  public API.

      connect ─▶ simple_query (IDENTIFY_SYSTEM, SQL) ─▶ start (START_REPLICATION … LOGICAL)
        ─▶ recv ⟲ (XLogData: pgoutput messages for LsmIndex.Demo.Pgoutput; keepalives)
        ─▶ status_update (write/flush/apply LSNs: what the client holds durably) ─▶ close

  Why this rather than `pg_logical_slot_peek_changes` (`LsmIndex.Demo.Slot`): a peek decodes
  the WAL again from the slot's confirmed position on every call, where a walsender decodes
  each record once and streams the result; and the decoder is `pgoutput`, the one the host
  service (and PostgreSQL's own subscriptions) use, so the demo sees the values, the
  TOAST behaviour and the relation messages production sees.

  ## Confirmed flush is the caller's durable LSN

  The server forgets (and never sends again) every transaction whose commit ends at or
  before the `flush_lsn` of a status update. `status_update/5` therefore takes the LSNs
  from the caller, who must pass as `flush_lsn` only what it has made durable (the end LSN
  of the last transaction its state includes). Nothing here confirms anything on its own.

  The walsender keeps a confirmation in memory; PostgreSQL 15 writes it to disk only when it
  saves the slot for another reason. After a restart of the server — a crash, and a clean
  `pg_ctl restart` too — the slot's `confirmed_flush_lsn` can be behind what was confirmed
  (seen in the tests' cluster: back at the slot's creation), and from there the server sends
  confirmed transactions again. So a consumer starts the stream at its own durable LSN
  (`start/4`), not at `0/0`, and skips what ends at or before it.

  While idle the server sends keepalives carrying its
  WAL end; a caller with no open transaction and everything durable may confirm that LSN
  (as PostgreSQL's own apply worker does), so that the slot moves past WAL the publication
  filters out (pgoutput sends no empty transactions). A keepalive with `reply_requested`
  wants a status update at once; the server drops a connection that sends none for
  `wal_sender_timeout` (60 s by default).

  ## Connection

  Over `:gen_tcp` on the socket file (`{:local, path}`), passive: `recv/2` reads what the
  socket has in one call. Startup v3.0 with `user` (option, default `"postgres"`),
  `database` and `replication=database` (a logical walsender that also runs SQL). Only trust
  authentication is handled (the demo's clusters); any other request raises naming it.
  An `ErrorResponse` raises `LsmIndex.Demo.Replication.Error` with its severity, SQLSTATE
  code and message. The connection belongs to the process that opened it. The received
  bytes are split into messages and decoded by `LsmIndex.Demo.Replication.Messages`.

  Values decoded from the stream are sub-binaries of the bytes one `recv/2` read (up to
  4 MiB): a caller that keeps a few of them for long should `:binary.copy/1` them, lest
  they keep the whole read alive.
  """

  defmodule Error do
    @moduledoc "An `ErrorResponse` from the server (fields S, C, M, and D when present)."
    defexception [:severity, :code, :message, :detail]

    @typedoc "The server's error."
    @type t :: %__MODULE__{
            severity: String.t(),
            code: String.t(),
            message: String.t(),
            detail: String.t() | nil
          }
  end

  alias LsmIndex.Demo.Replication.Messages

  defstruct [:socket, mode: :idle, closed: false, pending: [], have: 0, need: 5]

  @typedoc """
  A connection. `pending`: the bytes received and not yet split into messages (newest
  first; the first one received is the previous read's incomplete tail), `have` their
  size, `need` the size at which the oldest incomplete message is whole.
  """
  @type t :: %__MODULE__{
          socket: :gen_tcp.socket() | nil,
          mode: :idle | :copy,
          closed: boolean(),
          pending: [binary()],
          have: non_neg_integer(),
          need: pos_integer()
        }

  @typedoc "An LSN (a byte position in the WAL) as an integer."
  @type lsn :: non_neg_integer()

  @typedoc """
  A message of the replication stream (`recv/2`):

    * `{:xlog_data, wal_start, wal_end, send_time, data}`: WAL data, one pgoutput message
      in `data` (`LsmIndex.Demo.Pgoutput.decode/1`); `send_time` in microseconds since
      2000-01-01 UTC
    * `{:keepalive, wal_end, send_time, reply_requested}`: the server's WAL end; reply with
      `status_update/5` at once when `reply_requested`
    * `:copy_done`, `{:command_complete, tag}`, `{:ready, status}`: the server ended the
      stream (it is shutting down, or answers a `close/1`)
  """
  @type message ::
          {:xlog_data, lsn(), lsn(), integer(), binary()}
          | {:keepalive, lsn(), integer(), boolean()}
          | :copy_done
          | {:command_complete, String.t()}
          | {:ready, byte()}

  @recv_bytes 4 * 1024 * 1024
  # microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch
  @pg_epoch_us 946_684_800_000_000
  @auth_methods %{
    2 => "KerberosV5",
    3 => "cleartext password",
    5 => "MD5 password",
    6 => "SCM credentials",
    7 => "GSSAPI",
    9 => "SSPI",
    10 => "SASL (SCRAM)"
  }

  @doc """
  Connects to `database` for logical replication through the unix socket at `socket`
  (a path, or a `LsmIndex.Demo.Postgres` cluster: its `.s.PGSQL.5432`) and waits for
  `ReadyForQuery`. Options: `user` (`"postgres"`), `timeout` (10,000 ms: for each reply).
  """
  @spec connect(Path.t() | LsmIndex.Demo.Postgres.t(), String.t(), keyword()) :: t()
  def connect(socket, database, opts \\ []) do
    opts = Keyword.validate!(opts, user: "postgres", timeout: 10_000)
    path = socket_path(socket)

    sock =
      case :gen_tcp.connect({:local, path}, 0, [:binary, active: false, packet: :raw]) do
        {:ok, sock} -> sock
        {:error, reason} -> raise "cannot connect to #{path}: #{:inet.format_error(reason)}"
      end

    params =
      for {k, v} <- [user: opts[:user], database: database, replication: "database"],
          into: <<>>,
          do: <<Atom.to_string(k)::binary, 0, v::binary, 0>>

    body = <<3::16, 0::16, params::binary, 0>>
    :ok = :gen_tcp.send(sock, <<byte_size(body) + 4::32, body::binary>>)
    conn = %__MODULE__{socket: sock}

    try do
      startup(conn, opts[:timeout])
    rescue
      e ->
        :gen_tcp.close(sock)
        reraise e, __STACKTRACE__
    end
  end

  defp socket_path(%{dir: dir}), do: Path.join(dir, ".s.PGSQL.5432")
  defp socket_path(path) when is_binary(path), do: path

  defp startup(conn, timeout) do
    case next_message(conn, timeout) do
      {{:auth, 0, _}, conn} ->
        startup(conn, timeout)

      {{:auth, code, _}, _conn} ->
        method = Map.get(@auth_methods, code, "method #{code}")

        raise "the server asks for #{method} authentication: only trust is supported " <>
                "(the demo's clusters use trust)"

      {{:ready, _}, conn} ->
        conn

      {_parameter_or_key, conn} ->
        startup(conn, timeout)
    end
  end

  @doc """
  Runs `sql` (a replication command such as `IDENTIFY_SYSTEM`, or SQL) with the simple
  query protocol and returns the rows of its results (all of them, in order) as lists of
  text or `nil`. Raises `LsmIndex.Demo.Replication.Error` on an error.
  """
  @spec simple_query(t(), String.t(), timeout()) :: [[String.t() | nil]]
  def simple_query(%__MODULE__{mode: :idle} = conn, sql, timeout \\ 10_000) do
    :ok = :gen_tcp.send(conn.socket, query_message(sql))
    {rows, _conn} = rows(conn, timeout, [])
    rows
  end

  defp query_message(sql), do: <<?Q, byte_size(sql) + 5::32, sql::binary, 0>>

  # every DataRow up to ReadyForQuery; the first error raised after ReadyForQuery, so the
  # connection stays usable
  defp rows(conn, timeout, acc) do
    case next_message(conn, timeout, false) do
      {{:data_row, row}, conn} -> rows(conn, timeout, [row | acc])
      {{:ready, _}, conn} -> {Enum.reverse(acc), conn}
      {%Error{} = e, conn} -> drain_then_raise(conn, timeout, e)
      {_other, conn} -> rows(conn, timeout, acc)
    end
  end

  defp drain_then_raise(conn, timeout, error) do
    case next_message(conn, timeout) do
      {{:ready, _}, _conn} -> raise error
      {_other, conn} -> drain_then_raise(conn, timeout, error)
    end
  end

  @doc """
  Starts streaming `slot` with pgoutput protocol version 1 for `publication`, from
  `start_lsn`, and waits for `CopyBothResponse`. The server sends every transaction whose
  commit record starts at or after the later of `start_lsn` and the slot's confirmed
  position (`0`: from the confirmed position). A consumer passes its durable LSN: after a
  server restart the confirmed position may be behind it (see the moduledoc). Option
  `messages: true`: the stream carries logical messages too (`pg_logical_emit_message`).
  """
  @spec start(t(), String.t(), String.t(), lsn(), keyword()) :: t()
  def start(%__MODULE__{mode: :idle} = conn, slot, publication, start_lsn, opts \\ []) do
    # the publication's name: an identifier inside a string literal
    names = publication |> identifier() |> String.replace("'", "''")
    messages = if Keyword.get(opts, :messages, false), do: ", messages 'true'", else: ""

    sql =
      "START_REPLICATION SLOT #{identifier(slot)} LOGICAL #{format_lsn(start_lsn)} " <>
        "(proto_version '1', publication_names '#{names}'#{messages})"

    :ok = :gen_tcp.send(conn.socket, query_message(sql))
    copy_both(conn)
  end

  defp identifier(name), do: ~s(") <> String.replace(name, ~S("), ~S("")) <> ~s(")

  # an error (no such slot, the slot active elsewhere) is followed by ReadyForQuery: read up
  # to it before raising, so the connection stays usable
  defp copy_both(conn) do
    case next_message(conn, 10_000, false) do
      {{:copy_both, _}, conn} -> %{conn | mode: :copy}
      {%Error{} = e, conn} -> drain_then_raise(conn, 10_000, e)
      {_other, conn} -> copy_both(conn)
    end
  end

  @doc """
  Everything the stream has delivered so far, waiting up to `timeout` ms for the first
  bytes: one read that waits, then reads that do not while the socket has data, up to
  4 MiB. Returns the complete messages in order (an incomplete one stays in the
  connection's buffer for the next call); `[]` after a timeout. Raises
  `LsmIndex.Demo.Replication.Error` on the server's error, and on a connection the server
  closed once the messages it sent before are returned.
  """
  @spec recv(t(), timeout()) :: {[message()], t()}
  def recv(%__MODULE__{closed: true}, _timeout),
    do: raise("the server closed the replication connection")

  def recv(%__MODULE__{socket: sock} = conn, timeout) do
    case :gen_tcp.recv(sock, 0, timeout) do
      {:ok, data} -> read_more(conn, [data], byte_size(data))
      {:error, :timeout} -> {[], conn}
      # nothing pending is whole: split_chunks leaves only an incomplete tail
      {:error, :closed} -> {[], %{conn | closed: true}}
      {:error, reason} -> raise "replication connection: #{:inet.format_error(reason)}"
    end
  end

  defp read_more(conn, chunks, bytes) when bytes >= @recv_bytes,
    do: Messages.split_chunks(conn, chunks)

  defp read_more(%__MODULE__{socket: sock} = conn, chunks, bytes) do
    case :gen_tcp.recv(sock, 0, 0) do
      {:ok, data} -> read_more(conn, [data | chunks], bytes + byte_size(data))
      {:error, :timeout} -> Messages.split_chunks(conn, chunks)
      {:error, _closed} -> Messages.split_chunks(%{conn | closed: true}, chunks)
    end
  end

  @doc """
  Adds `bytes` received from the server to `conn`'s buffer and takes the complete messages
  out of it (what `recv/2` does with what it read). Works on a `%Replication{}` without a
  socket: the decoder's tests feed it a stream cut anywhere.
  """
  @spec split(t(), iodata()) :: {[message()], t()}
  def split(conn, bytes), do: Messages.split_chunks(conn, [bytes])

  # One message outside the stream (startup, queries), waiting up to `timeout` for it;
  # errors raise unless `raise?` is false (then they are returned).
  defp next_message(conn, timeout, raise? \\ true) do
    case Messages.take_one(conn) do
      {nil, conn} ->
        case :gen_tcp.recv(conn.socket, 0, timeout) do
          {:ok, data} ->
            next_message(%{conn | pending: [data | conn.pending]}, timeout, raise?)

          {:error, reason} ->
            raise "replication connection: #{:inet.format_error(reason)} " <>
                    "(waiting for the server's reply)"
        end

      {%Error{} = e, _conn} when raise? ->
        raise e

      {message, conn} ->
        {message, conn}
    end
  end

  @doc """
  Sends a standby status update: `write_lsn` (received), `flush_lsn` (durable on the
  client's side: the server will not send again what ends at or before it — except after
  a server restart, see the moduledoc) and `apply_lsn`, with the clock in microseconds
  since 2000-01-01.
  `reply?`: ask the server for a keepalive in return.
  """
  @spec status_update(t(), lsn(), lsn(), lsn(), boolean()) :: :ok
  def status_update(
        %__MODULE__{mode: :copy} = conn,
        write_lsn,
        flush_lsn,
        apply_lsn,
        reply? \\ false
      ) do
    clock = System.os_time(:microsecond) - @pg_epoch_us
    reply = if reply?, do: 1, else: 0

    :ok =
      :gen_tcp.send(
        conn.socket,
        <<?d, 38::32, ?r, write_lsn::64, flush_lsn::64, apply_lsn::64, clock::64-signed, reply>>
      )
  end

  @doc """
  Closes the connection: when streaming, sends `CopyDone` and waits (up to `timeout` ms,
  discarding the data still in flight) for the server to end the stream, which releases
  the slot — a new connection can start it at once — then `Terminate`. Never raises.
  """
  @spec close(t(), timeout()) :: :ok
  def close(%__MODULE__{socket: sock} = conn, timeout \\ 5_000) do
    try do
      if conn.mode == :copy and not conn.closed do
        :ok = :gen_tcp.send(sock, <<?c, 4::32>>)
        deadline = System.monotonic_time(:millisecond) + timeout
        await_ready(conn, deadline)
      end

      :gen_tcp.send(sock, <<?X, 4::32>>)
    rescue
      _ -> :ok
    end

    :gen_tcp.close(sock)
    :ok
  end

  defp await_ready(conn, deadline) do
    left = max(deadline - System.monotonic_time(:millisecond), 0)
    {messages, conn} = recv(conn, left)

    cond do
      Enum.any?(messages, &match?({:ready, _}, &1)) -> :ok
      left == 0 -> :timeout
      true -> await_ready(conn, deadline)
    end
  end

  @doc "`X/Y` (hexadecimal halves, as PostgreSQL writes an LSN) as an integer."
  defdelegate parse_lsn(text), to: LsmIndex.Demo.Slot

  @doc "An LSN as PostgreSQL writes it (`X/Y`)."
  defdelegate format_lsn(lsn), to: LsmIndex.Demo.Slot
end
