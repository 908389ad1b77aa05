defmodule LsmIndex.Demo.Pgoutput do
  @moduledoc """
  Decodes the messages of PostgreSQL's `pgoutput` plugin (logical replication protocol
  version 1) and assembles them into whole transactions of the demo's change tuples. Not
  public API.

      XLogData (LsmIndex.Demo.Replication.recv/2) ─▶ decode: one message per XLogData
        ─▶ feed: relation cache (oid ─▶ table, columns) + the open transaction
        ─▶ {xid, commit_end_lsn, [event]} per Commit

  Why pgoutput: it is the decoder of the host sync service and of PostgreSQL's own
  subscriptions, built into the server; the demo then reads what production reads (values
  as PostgreSQL's text output, unchanged TOAST values left out, Relation messages before a
  table's first change and after its columns change).

  ## Messages (`decode/1`)

  ```text
  'B' final_lsn i64 | commit_ts i64 | xid i32                       {:begin, ...}
  'C' flags i8 | commit_lsn i64 | end_lsn i64 | commit_ts i64        {:commit, ...}
  'O' commit_lsn i64 | name cstr                                     {:origin, ...}
  'R' oid i32 | namespace cstr | name cstr | identity i8 | ncols i16
      (flags i8 | name cstr | type_oid i32 | typmod i32)*            {:relation, ...}
  'Y' oid i32 | namespace cstr | name cstr                           {:type, ...}
  'I' oid i32 | 'N' tuple                                            {:insert, ...}
  'U' oid i32 | ['K' tuple | 'O' tuple] | 'N' tuple                  {:update, ...}
  'D' oid i32 | ('K' | 'O') tuple                                    {:delete, ...}
  'T' nrels i32 | options i8 | oid i32 * nrels                       {:truncate, ...}
  'M' flags i8 | lsn i64 | prefix cstr | len i32 | bytes             {:message, ...}
  tuple   ncols i16 | column*
  column  'n' (NULL) | 'u' (unchanged TOASTed value) | 't' len i32 | text bytes
  ```

  Timestamps are microseconds since 2000-01-01 UTC; an empty namespace is `pg_catalog`.

  ## Transactions (`feed/2`)

  A transaction is `{xid, commit_end_lsn, events}`, the events in the order of the stream:
  `{:insert, table, record}`, `{:update, table, old, new}`, `{:delete, table, old}`,
  `{:truncate, table}` (one per table of a `TRUNCATE`) — the change tuples of
  `LsmIndex.Filter` — `{:message, prefix, content}` for a transactional logical message
  (`pg_logical_emit_message(true, …)`, with the stream started with `messages: true`) and `{:relation, table, [{column, type_oid}]}` when a Relation
  message brings a column list other than the one cached for its table (the first one
  included), before the changes that use it. A table is `{schema, name}`, a record a map
  of column name to PostgreSQL's text or `nil`.

  The tables must be `REPLICA IDENTITY FULL`: an update or delete without its old row
  ('O') raises `ArgumentError`. In an update's new row a column whose TOASTed value did not
  change comes as 'u' and takes the old row's value (under FULL identity the old row
  carries every value in full).

  A transaction may arrive over any number of `feed/2` calls: the open one is carried in
  the state. Values are sub-binaries of the received data.
  """

  defstruct relations: %{}, txn: nil, pending: [], toast_fills: 0

  @typedoc """
  The assembler: the relation cache (oid ─▶ `{table, column names, [{name, type_oid}]}`),
  the open transaction (`{xid, final_lsn, events newest first}`), and events that arrived
  outside a transaction (newest first; the next transaction's first events).
  """
  @type t :: %__MODULE__{
          relations: %{
            non_neg_integer() => {table(), [String.t()], [{String.t(), non_neg_integer()}]}
          },
          txn: nil | {non_neg_integer(), non_neg_integer(), [event()]},
          pending: [event()],
          toast_fills: non_neg_integer()
        }

  @typedoc "A table: `{schema, name}`."
  @type table :: {String.t(), String.t()}
  @typedoc "A row: column name ─▶ PostgreSQL's text, or `nil` for NULL."
  @type record :: %{String.t() => String.t() | nil}

  @typedoc "One event of a transaction."
  @type event ::
          {:insert, table(), record()}
          | {:update, table(), record(), record()}
          | {:delete, table(), record()}
          | {:truncate, table()}
          | {:relation, table(), [{String.t(), non_neg_integer()}]}
          | {:message, String.t(), binary()}

  @typedoc "A whole transaction: its xid, the end LSN of its commit record, its events."
  @type txn :: {non_neg_integer(), non_neg_integer(), [event()]}

  @typedoc "A column value of a decoded tuple."
  @type value :: String.t() | nil | :unchanged_toast

  @typedoc "One decoded pgoutput message (`decode/1`)."
  @type message ::
          {:begin, final_lsn :: non_neg_integer(), commit_ts :: integer(),
           xid :: non_neg_integer()}
          | {:commit, flags :: byte(), commit_lsn :: non_neg_integer(),
             end_lsn :: non_neg_integer(), commit_ts :: integer()}
          | {:origin, commit_lsn :: non_neg_integer(), name :: String.t()}
          | {:relation, oid :: non_neg_integer(), namespace :: String.t(), name :: String.t(),
             identity :: :default | :nothing | :full | :index,
             [
               {flags :: byte(), name :: String.t(), type_oid :: non_neg_integer(),
                typmod :: integer()}
             ]}
          | {:type, oid :: non_neg_integer(), namespace :: String.t(), name :: String.t()}
          | {:insert, oid :: non_neg_integer(), [value()]}
          | {:update, oid :: non_neg_integer(), nil | {:key | :old, [value()]}, [value()]}
          | {:delete, oid :: non_neg_integer(), {:key | :old, [value()]}}
          | {:truncate, [:cascade | :restart_identity], [non_neg_integer()]}
          | {:message, flags :: byte(), lsn :: non_neg_integer(), prefix :: String.t(), binary()}

  @doc "An assembler with an empty relation cache and no open transaction."
  @spec new() :: t()
  def new, do: %__MODULE__{}

  @doc "How many unchanged TOASTed values of updates' new rows were taken from their old rows."
  @spec toast_fills(t()) :: non_neg_integer()
  def toast_fills(%__MODULE__{toast_fills: n}), do: n

  @doc "Whether a transaction is open (begun, its commit not yet fed)."
  @spec open_transaction?(t()) :: boolean()
  def open_transaction?(%__MODULE__{txn: txn}), do: txn != nil

  @doc """
  Feeds messages of the stream in order — `LsmIndex.Demo.Replication` messages (the
  `:xlog_data` ones are read, the others skipped) or pgoutput messages as binaries — and
  returns the transactions they complete, in commit order. Raises `ArgumentError` on a
  malformed message, a change to a table no Relation message described, or an update or
  delete without its old row (the tables must be `REPLICA IDENTITY FULL`).
  """
  @spec feed(t(), [LsmIndex.Demo.Replication.message() | binary()]) :: {[txn()], t()}
  def feed(%__MODULE__{} = state, messages), do: feed(messages, state, [])

  defp feed([{:xlog_data, _start, _end, _time, data} | messages], state, done),
    do: feed([data | messages], state, done)

  defp feed([data | messages], %__MODULE__{txn: {xid, final, events}} = state, done)
       when is_binary(data) do
    case data do
      <<?I, oid::32, ?N, tuple::binary>> ->
        {table, names, _} = relation!(state, oid)
        {new, _} = whole_record(tuple, names, nil, data)
        feed(messages, %{state | txn: {xid, final, [{:insert, table, new} | events]}}, done)

      <<?U, oid::32, ?O, tuple::binary>> ->
        {table, names, _} = relation!(state, oid)

        case record(tuple, names, nil) do
          {old, <<?N, tuple::binary>>, _} ->
            {new, fills} = whole_record(tuple, names, old, data)
            event = {:update, table, old, new}
            state = %{state | toast_fills: state.toast_fills + fills}
            feed(messages, %{state | txn: {xid, final, [event | events]}}, done)

          _ ->
            malformed(data)
        end

      <<?D, oid::32, ?O, tuple::binary>> ->
        {table, names, _} = relation!(state, oid)
        {old, _} = whole_record(tuple, names, nil, data)
        feed(messages, %{state | txn: {xid, final, [{:delete, table, old} | events]}}, done)

      <<?C, _flags, commit_lsn::64, end_lsn::64, _ts::64>> ->
        if commit_lsn != final do
          raise ArgumentError,
                "Commit at #{commit_lsn} of a transaction begun for a commit at #{final}"
        end

        txn = {xid, end_lsn, :lists.reverse(events)}
        feed(messages, %{state | txn: nil}, [txn | done])

      <<?B, _::binary>> ->
        raise ArgumentError, "Begin of a transaction while transaction #{xid} is open"

      _ ->
        feed(messages, other(decode(data), state), done)
    end
  end

  defp feed([data | messages], %__MODULE__{txn: nil} = state, done) when is_binary(data) do
    case decode(data) do
      {:begin, final, _ts, xid} ->
        feed(messages, %{state | txn: {xid, final, state.pending}, pending: []}, done)

      message when elem(message, 0) in [:relation, :type, :origin, :message] ->
        feed(messages, other(message, state), done)

      message ->
        raise ArgumentError, "#{elem(message, 0)} outside a transaction"
    end
  end

  defp feed([_other | messages], state, done), do: feed(messages, state, done)
  defp feed([], state, done), do: {:lists.reverse(done), state}

  # the messages other than the common changes of an open transaction
  defp other({:relation, oid, namespace, name, _identity, columns}, state) do
    table = {namespace, name}
    typed = for {_flags, column, type, _typmod} <- columns, do: {column, type}
    names = for {column, _type} <- typed, do: column

    state =
      case state.relations do
        %{^oid => {^table, _, ^typed}} -> state
        _ -> add_event(state, {:relation, table, typed})
      end

    %{state | relations: Map.put(state.relations, oid, {table, names, typed})}
  end

  defp other({:update, _oid, nil, _new}, _state), do: without_old(:update)
  defp other({:update, _oid, {:key, _}, _new}, _state), do: without_old(:update)
  defp other({:delete, _oid, {:key, _}}, _state), do: without_old(:delete)

  defp other({:truncate, _options, oids}, state) do
    Enum.reduce(oids, state, fn oid, state ->
      {table, _, _} = relation!(state, oid)
      add_event(state, {:truncate, table})
    end)
  end

  # a transactional logical message (`pg_logical_emit_message(true, ...)`, sent when the
  # stream was started with `messages`): an event of its transaction
  defp other({:message, flags, _lsn, prefix, content}, state) when rem(flags, 2) == 1,
    do: add_event(state, {:message, prefix, content})

  # Type, Origin, a non-transactional Message: nothing the demo uses
  defp other(_message, state), do: state

  defp add_event(%__MODULE__{txn: {xid, final, events}} = state, event),
    do: %{state | txn: {xid, final, [event | events]}}

  # newest first, like a transaction's events: the next Begin takes them as its first
  defp add_event(%__MODULE__{txn: nil, pending: pending} = state, event),
    do: %{state | pending: [event | pending]}

  defp without_old(kind) do
    raise ArgumentError,
          "#{kind} without its old row: the demo's tables must be REPLICA IDENTITY FULL"
  end

  defp relation!(state, oid) do
    case state.relations do
      %{^oid => relation} -> relation
      _ -> raise ArgumentError, "a change to relation #{oid}, which no Relation message described"
    end
  end

  # A TupleData as a map of the relation's column names, and what follows it. `old`: the old
  # row, whose values fill the unchanged TOASTed columns ('u') of an update's new row.
  defp record(<<ncols::16, columns::binary>>, names, old) do
    record(columns, names, old, ncols, [], 0)
  end

  defp record(_bad, _names, _old), do: {nil, nil, 0}

  # a record that must end the message, and how many unchanged TOAST values it took from `old`
  defp whole_record(tuple, names, old, data) do
    case record(tuple, names, old) do
      {record, <<>>, fills} -> {record, fills}
      _ -> malformed(data)
    end
  end

  defp record(
         <<?t, len::32, value::binary-size(len), rest::binary>>,
         [name | names],
         old,
         n,
         acc,
         fills
       ),
       do: record(rest, names, old, n - 1, [{name, value} | acc], fills)

  defp record(<<?n, rest::binary>>, [name | names], old, n, acc, fills),
    do: record(rest, names, old, n - 1, [{name, nil} | acc], fills)

  defp record(<<?u, rest::binary>>, [name | names], old, n, acc, fills) do
    case old do
      %{^name => value} ->
        record(rest, names, old, n - 1, [{name, value} | acc], fills + 1)

      _ ->
        raise ArgumentError,
              "column #{inspect(name)}: an unchanged TOASTed value without the old row's " <>
                "value (the demo's tables must be REPLICA IDENTITY FULL)"
    end
  end

  defp record(rest, [], _old, 0, acc, fills), do: {:maps.from_list(acc), rest, fills}

  defp record(rest, names, _old, n, _acc, _fills) do
    raise ArgumentError,
          "a tuple that does not match its Relation message (#{length(names)} columns " <>
            "described, #{n} left in the tuple) at #{inspect(rest, limit: 20)}"
  end

  @doc "Decodes one pgoutput message (protocol version 1); raises `ArgumentError` on anything else."
  @spec decode(binary()) :: message()
  def decode(<<?B, final::64, ts::64-signed, xid::32>>), do: {:begin, final, ts, xid}

  def decode(<<?C, flags, commit_lsn::64, end_lsn::64, ts::64-signed>>),
    do: {:commit, flags, commit_lsn, end_lsn, ts}

  def decode(<<?O, lsn::64, rest::binary>> = data) do
    case cstrings(rest, 1, data) do
      {[name], <<>>} -> {:origin, lsn, name}
      _ -> malformed(data)
    end
  end

  def decode(<<?R, oid::32, rest::binary>> = data) do
    {[namespace, name], <<identity, ncols::16, rest::binary>>} = cstrings(rest, 2, data)
    {columns, <<>>} = columns(rest, ncols, [], data)
    {:relation, oid, namespace(namespace), name, identity(identity, data), columns}
  end

  def decode(<<?Y, oid::32, rest::binary>> = data) do
    case cstrings(rest, 2, data) do
      {[namespace, name], <<>>} -> {:type, oid, namespace(namespace), name}
      _ -> malformed(data)
    end
  end

  def decode(<<?I, oid::32, ?N, tuple::binary>> = data) do
    case tuple(tuple, data) do
      {new, <<>>} -> {:insert, oid, new}
      _ -> malformed(data)
    end
  end

  def decode(<<?U, oid::32, kind, tuple::binary>> = data) when kind in [?K, ?O] do
    case tuple(tuple, data) do
      {old, <<?N, tuple::binary>>} ->
        case tuple(tuple, data) do
          {new, <<>>} -> {:update, oid, {old_kind(kind), old}, new}
          _ -> malformed(data)
        end

      _ ->
        malformed(data)
    end
  end

  def decode(<<?U, oid::32, ?N, tuple::binary>> = data) do
    case tuple(tuple, data) do
      {new, <<>>} -> {:update, oid, nil, new}
      _ -> malformed(data)
    end
  end

  def decode(<<?D, oid::32, kind, tuple::binary>> = data) when kind in [?K, ?O] do
    case tuple(tuple, data) do
      {old, <<>>} -> {:delete, oid, {old_kind(kind), old}}
      _ -> malformed(data)
    end
  end

  def decode(<<?T, n::32, options, oids::binary-size(n * 4)>>) do
    options =
      for {bit, name} <- [{1, :cascade}, {2, :restart_identity}],
          Bitwise.band(options, bit) != 0,
          do: name

    {:truncate, options, for(<<oid::32 <- oids>>, do: oid)}
  end

  def decode(<<?M, flags, lsn::64, rest::binary>> = data) do
    case cstrings(rest, 1, data) do
      {[prefix], <<len::32, content::binary-size(len)>>} ->
        {:message, flags, lsn, prefix, content}

      _ ->
        malformed(data)
    end
  end

  def decode(data), do: malformed(data)

  defp old_kind(?K), do: :key
  defp old_kind(?O), do: :old

  defp identity(?d, _data), do: :default
  defp identity(?n, _data), do: :nothing
  defp identity(?f, _data), do: :full
  defp identity(?i, _data), do: :index
  defp identity(_other, data), do: malformed(data)

  defp namespace(""), do: "pg_catalog"
  defp namespace(namespace), do: namespace

  defp columns(rest, 0, acc, _data), do: {:lists.reverse(acc), rest}

  defp columns(<<flags, rest::binary>>, n, acc, data) do
    case cstrings(rest, 1, data) do
      {[name], <<type::32, typmod::32-signed, rest::binary>>} ->
        columns(rest, n - 1, [{flags, name, type, typmod} | acc], data)

      _ ->
        malformed(data)
    end
  end

  defp columns(_rest, _n, _acc, data), do: malformed(data)

  defp tuple(<<n::16, rest::binary>>, data), do: values(rest, n, [], data)
  defp tuple(_rest, data), do: malformed(data)

  defp values(rest, 0, acc, _data), do: {:lists.reverse(acc), rest}

  defp values(<<?t, len::32, value::binary-size(len), rest::binary>>, n, acc, data),
    do: values(rest, n - 1, [value | acc], data)

  defp values(<<?n, rest::binary>>, n, acc, data), do: values(rest, n - 1, [nil | acc], data)

  defp values(<<?u, rest::binary>>, n, acc, data),
    do: values(rest, n - 1, [:unchanged_toast | acc], data)

  defp values(_rest, _n, _acc, data), do: malformed(data)

  # `n` NUL-terminated strings off the front of `rest`
  defp cstrings(rest, n, data), do: cstrings(rest, n, [], data)
  defp cstrings(rest, 0, acc, _data), do: {:lists.reverse(acc), rest}

  defp cstrings(rest, n, acc, data) do
    case :binary.split(rest, <<0>>) do
      [string, rest] -> cstrings(rest, n - 1, [string | acc], data)
      [_] -> malformed(data)
    end
  end

  defp malformed(data),
    do: raise(ArgumentError, "not a pgoutput v1 message: #{inspect(data, limit: 60)}")
end
