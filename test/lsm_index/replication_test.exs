defmodule LsmIndex.PgoutputTest do
  # The pgoutput decoder, the transaction assembler and the stream's framing on hand-built
  # bytes, without PostgreSQL (the end-to-end half is LsmIndex.ReplicationTest below).
  use ExUnit.Case, async: true

  alias LsmIndex.Demo.{Pgoutput, Replication}

  # --- builders: the messages as PostgreSQL writes them --------------------------------

  defp begin(final, xid), do: <<?B, final::64, 1_000::64, xid::32>>
  defp commit(lsn, end_lsn), do: <<?C, 0, lsn::64, end_lsn::64, 1_000::64>>

  defp relation(oid, namespace, name, columns) do
    cols = for {col, type} <- columns, into: <<>>, do: <<1, col::binary, 0, type::32, -1::32>>
    <<?R, oid::32, namespace::binary, 0, name::binary, 0, ?f, length(columns)::16, cols::binary>>
  end

  defp tuple(values) do
    cols =
      for value <- values, into: <<>> do
        case value do
          nil -> "n"
          :u -> "u"
          text -> <<?t, byte_size(text)::32, text::binary>>
        end
      end

    <<length(values)::16, cols::binary>>
  end

  defp insert(oid, new), do: <<?I, oid::32, ?N, tuple(new)::binary>>
  defp update(oid, old, new), do: <<?U, oid::32, ?O, tuple(old)::binary, ?N, tuple(new)::binary>>
  defp delete(oid, old), do: <<?D, oid::32, ?O, tuple(old)::binary>>

  defp truncate(oids, options \\ 0),
    do: <<?T, length(oids)::32, options, for(oid <- oids, into: <<>>, do: <<oid::32>>)::binary>>

  # CopyData frames: XLogData around a message, a keepalive
  defp xlog(data, lsn),
    do: <<?d, byte_size(data) + 29::32, ?w, lsn::64, lsn::64, 7::64, data::binary>>

  defp keepalive(lsn, reply), do: <<?d, 22::32, ?k, lsn::64, 7::64, reply>>

  @users [{"id", 20}, {"name", 25}, {"bio", 25}]

  # three transactions: first sight of the table, a column added, a truncate of two tables
  defp stream do
    [
      begin(0x100, 7),
      relation(16_385, "public", "users", @users),
      insert(16_385, ["1", "a\\'\"\nü", nil]),
      update(16_385, ["1", "a", "long"], ["2", "b", :u]),
      commit(0x100, 0x130),
      begin(0x200, 8),
      relation(16_385, "public", "users", @users ++ [{"extra", 25}]),
      insert(16_385, ["3", "c", nil, "x"]),
      delete(16_385, ["3", "c", nil, "x"]),
      commit(0x200, 0x230),
      begin(0x300, 9),
      relation(16_385, "public", "users", @users ++ [{"extra", 25}]),
      relation(16_390, "", "pg_thing", [{"k", 23}]),
      truncate([16_385, 16_390], 3),
      commit(0x300, 0x330)
    ]
  end

  defp expected do
    users = {"public", "users"}
    thing = {"pg_catalog", "pg_thing"}
    row3 = %{"id" => "3", "name" => "c", "bio" => nil, "extra" => "x"}

    [
      {7, 0x130,
       [
         {:relation, users, @users},
         {:insert, users, %{"id" => "1", "name" => "a\\'\"\nü", "bio" => nil}},
         {:update, users, %{"id" => "1", "name" => "a", "bio" => "long"},
          %{"id" => "2", "name" => "b", "bio" => "long"}}
       ]},
      {8, 0x230,
       [
         {:relation, users, @users ++ [{"extra", 25}]},
         {:insert, users, row3},
         {:delete, users, row3}
       ]},
      {9, 0x330, [{:relation, thing, [{"k", 23}]}, {:truncate, users}, {:truncate, thing}]}
    ]
  end

  # the stream as the socket delivers it: frames with keepalives between transactions
  defp wire do
    stream()
    |> Enum.with_index()
    |> Enum.map(fn {data, i} -> xlog(data, 0x100 + i) end)
    |> List.insert_at(5, keepalive(0x130, 1))
    |> IO.iodata_to_binary()
  end

  # bytes in pieces through Replication.split/2 and Pgoutput.feed/2
  defp assemble(pieces) do
    {txns, _conn, asm} =
      Enum.reduce(pieces, {[], %Replication{}, Pgoutput.new()}, fn piece, {txns, conn, asm} ->
        {messages, conn} = Replication.split(conn, piece)
        {done, asm} = Pgoutput.feed(asm, messages)
        {txns ++ done, conn, asm}
      end)

    {txns, asm}
  end

  describe "Pgoutput.decode/1" do
    test "every message of protocol version 1" do
      assert Pgoutput.decode(begin(0x1_0000_0020, 77)) == {:begin, 0x1_0000_0020, 1_000, 77}
      assert Pgoutput.decode(commit(5, 9)) == {:commit, 0, 5, 9, 1_000}
      assert Pgoutput.decode(<<?O, 42::64, "origin", 0>>) == {:origin, 42, "origin"}

      assert Pgoutput.decode(relation(16_385, "", "t", [{"a", 23}, {"b", 25}])) ==
               {:relation, 16_385, "pg_catalog", "t", :full, [{1, "a", 23, -1}, {1, "b", 25, -1}]}

      assert Pgoutput.decode(<<?Y, 99::32, "public", 0, "mood", 0>>) ==
               {:type, 99, "public", "mood"}

      assert Pgoutput.decode(insert(1, ["", nil, "x"])) == {:insert, 1, ["", nil, "x"]}

      assert Pgoutput.decode(update(1, ["a", "b"], ["a", :u])) ==
               {:update, 1, {:old, ["a", "b"]}, ["a", :unchanged_toast]}

      assert Pgoutput.decode(
               <<?U, 1::32, ?K, tuple(["a", nil])::binary, ?N, tuple(["b", nil])::binary>>
             ) ==
               {:update, 1, {:key, ["a", nil]}, ["b", nil]}

      assert Pgoutput.decode(<<?U, 1::32, ?N, tuple(["b"])::binary>>) == {:update, 1, nil, ["b"]}
      assert Pgoutput.decode(delete(1, ["a"])) == {:delete, 1, {:old, ["a"]}}

      assert Pgoutput.decode(truncate([1, 2], 3)) ==
               {:truncate, [:cascade, :restart_identity], [1, 2]}

      assert Pgoutput.decode(truncate([1])) == {:truncate, [], [1]}

      assert Pgoutput.decode(<<?M, 1, 8::64, "p", 0, 2::32, "hi">>) ==
               {:message, 1, 8, "p", "hi"}
    end

    test "malformed messages raise ArgumentError" do
      for bad <- [
            "",
            "Z",
            binary_part(begin(1, 2), 0, 8),
            insert(1, ["abc"]) <> "x",
            binary_part(insert(1, ["abc"]), 0, 12),
            <<?I, 1::32, ?N, 1::16, ?b, 0::32>>,
            <<?O, 1::64, "no terminator">>,
            <<?R, 1::32, "s", 0, "t", 0, ?x, 0::16>>,
            truncate([1, 2]) <> <<0>>
          ] do
        assert_raise ArgumentError, fn -> Pgoutput.decode(bad) end
      end
    end
  end

  describe "Pgoutput.feed/2" do
    test "whole transactions of change tuples, relation events when the columns change" do
      assert {txns, asm} = Pgoutput.feed(Pgoutput.new(), stream())
      assert txns == expected()
      refute Pgoutput.open_transaction?(asm)
    end

    test "a transaction open across calls is carried" do
      {first, rest} = Enum.split(stream(), 3)
      {[], asm} = Pgoutput.feed(Pgoutput.new(), first)
      assert Pgoutput.open_transaction?(asm)
      {txns, _asm} = Pgoutput.feed(asm, rest)
      assert txns == expected()
    end

    test "Relation messages between transactions: their events open the next one" do
      a = relation(1, "public", "a", [{"x", 23}])
      b = relation(2, "public", "b", [{"y", 23}])
      messages = [a, b, begin(9, 1), insert(2, ["5"]), commit(9, 10)]

      assert {[{1, 10, events}], _} = Pgoutput.feed(Pgoutput.new(), messages)

      assert events == [
               {:relation, {"public", "a"}, [{"x", 23}]},
               {:relation, {"public", "b"}, [{"y", 23}]},
               {:insert, {"public", "b"}, %{"y" => "5"}}
             ]
    end

    test "an update or delete without the old row asks for REPLICA IDENTITY FULL" do
      rel = relation(1, "public", "t", [{"id", 23}, {"body", 25}])

      for change <- [
            <<?U, 1::32, ?N, tuple(["1", "x"])::binary>>,
            <<?U, 1::32, ?K, tuple(["1", nil])::binary, ?N, tuple(["1", "x"])::binary>>,
            <<?D, 1::32, ?K, tuple(["1", nil])::binary>>,
            insert(1, ["1", :u])
          ] do
        assert_raise ArgumentError, ~r/REPLICA IDENTITY FULL/, fn ->
          Pgoutput.feed(Pgoutput.new(), [begin(9, 1), rel, change, commit(9, 10)])
        end
      end
    end

    test "changes to an undescribed relation, a tuple of the wrong width, stray messages raise" do
      rel = relation(1, "public", "t", [{"id", 23}])

      for messages <- [
            [begin(9, 1), insert(2, ["1"])],
            [begin(9, 1), rel, insert(1, ["1", "2"])],
            [insert(1, ["1"])],
            [commit(9, 10)],
            [begin(9, 1), begin(9, 1)],
            [begin(9, 1), commit(8, 10)]
          ] do
        assert_raise ArgumentError, fn -> Pgoutput.feed(Pgoutput.new(), messages) end
      end
    end
  end

  describe "Replication.split/2" do
    test "the stream cut at every byte boundary gives the same transactions" do
      wire = wire()
      assert {txns, _} = assemble([wire])
      assert txns == expected()

      for at <- 0..byte_size(wire) do
        <<a::binary-size(at), b::binary>> = wire
        assert {txns, _} = assemble([a, b])
        assert txns == expected(), "cut at byte #{at}"
      end

      assert {txns, _} = assemble(for <<byte <- wire>>, do: <<byte>>)
      assert txns == expected()
      # iodata as well as binaries
      <<a::binary-size(100), b::binary-size(50), c::binary>> = wire
      assert {^txns, _} = assemble([[a, [b]], c])
    end

    test "keepalives, and a large message kept in pieces until it is whole" do
      big = String.duplicate("0123456789", 100_000)
      frame = xlog(insert(1, [big]), 5)

      {[{:keepalive, 0x130, 7, true}], conn} =
        Replication.split(%Replication{}, keepalive(0x130, 1))

      pieces = for <<piece::binary-size(1000) <- binary_part(frame, 0, 999_000)>>, do: piece

      conn =
        Enum.reduce(pieces, conn, fn piece, conn ->
          {[], conn} = Replication.split(conn, piece)
          # not joined while incomplete: one pending binary per piece
          assert length(conn.pending) == conn.have / 1000
          conn
        end)

      rest = binary_part(frame, 999_000, byte_size(frame) - 999_000)
      {[{:xlog_data, 5, 5, 7, data}], conn} = Replication.split(conn, rest <> "d")
      assert Pgoutput.decode(data) == {:insert, 1, [big]}
      assert conn.pending == ["d"] and conn.have == 1
    end

    test "an ErrorResponse in the stream raises with the server's message" do
      error = <<"SFATAL", 0, "VFATAL", 0, "C57P01", 0, "Mterminating", 0, 0>>
      frame = <<?E, byte_size(error) + 4::32, error::binary>>

      assert_raise Replication.Error, "FATAL 57P01: terminating", fn ->
        Replication.split(%Replication{}, frame)
      end
    end
  end
end

defmodule LsmIndex.ReplicationTest do
  # Logical replication through the streaming protocol and pgoutput on a real PostgreSQL:
  # each test in a database of its own with table `t` (REPLICA IDENTITY FULL, `body` stored
  # out of line uncompressed), `t2`, publication `p` and a pgoutput slot. One throwaway
  # cluster for the module.
  use ExUnit.Case, async: false

  alias LsmIndex.Demo.{Pgoutput, Postgres, Psql, Replication}
  alias LsmIndex.Test.Wait

  @moduletag :end_to_end

  @t {"public", "t"}
  @t2 {"public", "t2"}
  @columns [{"id", 23}, {"body", 25}, {"n", 23}]

  setup_all do
    pg = Postgres.start(logical: true)
    on_exit(fn -> Postgres.stop(pg) end)
    %{pg: pg}
  end

  setup %{pg: pg} do
    n = System.unique_integer([:positive])
    db = "repl#{n}"
    slot = "s#{n}"
    Postgres.query(pg, "CREATE DATABASE #{db};")

    Postgres.query(
      pg,
      """
      CREATE TABLE t (id int PRIMARY KEY, body text, n int);
      ALTER TABLE t REPLICA IDENTITY FULL;
      ALTER TABLE t ALTER COLUMN body SET STORAGE EXTERNAL;
      CREATE TABLE t2 (k int);
      ALTER TABLE t2 REPLICA IDENTITY FULL;
      CREATE PUBLICATION p FOR TABLE t, t2;
      SELECT pg_create_logical_replication_slot('#{slot}', 'pgoutput');
      """,
      db
    )

    # a test that failed holding a connection: its walsender lets the slot go when the
    # socket closes
    on_exit(fn ->
      Wait.until("slot #{slot} released", fn -> slot_row(pg, db, slot, "active") == "f" end)
      Postgres.query(pg, "SELECT pg_drop_replication_slot('#{slot}');", db)
    end)

    %{db: db, slot: slot}
  end

  defp sql(%{pg: pg, db: db}, sql), do: Postgres.query(pg, sql, db)

  defp slot_row(pg, db, slot, column) do
    Postgres.query(
      pg,
      "SELECT #{column} FROM pg_replication_slots WHERE slot_name = '#{slot}';",
      db
    )
    |> String.trim()
  end

  defp stream(%{pg: pg, db: db, slot: slot}, start_lsn \\ 0) do
    pg |> Replication.connect(db) |> Replication.start(slot, "p", start_lsn)
  end

  # `want` more transactions (answering keepalives without confirming anything), with the
  # raw pgoutput messages they came in
  defp collect(conn, asm, want) do
    collect(conn, asm, want, [], [], System.monotonic_time(:millisecond) + Wait.hang_guard())
  end

  defp collect(conn, asm, want, txns, raw, _deadline) when length(txns) >= want,
    do: {txns, raw, conn, asm}

  defp collect(conn, asm, want, txns, raw, deadline) do
    if System.monotonic_time(:millisecond) > deadline,
      do: flunk("#{length(txns)} of #{want} transactions")

    {messages, conn} = Replication.recv(conn, 100)

    for {:keepalive, wal_end, _, true} <- messages,
        do: Replication.status_update(conn, wal_end, 0, 0)

    {done, asm} = Pgoutput.feed(asm, messages)
    data = for {:xlog_data, _, _, _, data} <- messages, do: Pgoutput.decode(data)
    collect(conn, asm, want, txns ++ done, raw ++ data, deadline)
  end

  defp events(txns), do: Enum.map(txns, fn {_xid, _lsn, events} -> events end)

  describe "connect/3 and simple_query/3" do
    test "IDENTIFY_SYSTEM, SQL rows with NULLs, the server's errors", %{pg: pg, db: db} = ctx do
      conn = Replication.connect(pg, db)
      assert [[_system_id, "1", xlogpos, ^db]] = Replication.simple_query(conn, "IDENTIFY_SYSTEM")
      assert Replication.parse_lsn(xlogpos) > 0
      assert Replication.format_lsn(Replication.parse_lsn(xlogpos)) == xlogpos

      assert Replication.simple_query(
               conn,
               "SELECT 1, NULL, 'é'::text UNION ALL SELECT 2, 'x', ''"
             ) ==
               [["1", nil, "é"], ["2", "x", ""]]

      error =
        assert_raise Replication.Error, fn -> Replication.simple_query(conn, "SELECT nope") end

      assert error.code == "42703" and error.message =~ ~s(column "nope" does not exist)
      # the connection is still good after an error
      assert Replication.simple_query(conn, "SELECT 2") == [["2"]]

      error = assert_raise Replication.Error, fn -> Replication.start(conn, "nope", "p", 0) end
      assert error.code == "42704"
      assert Replication.simple_query(conn, "SELECT 3") == [["3"]]
      Replication.close(conn)

      error = assert_raise Replication.Error, fn -> Replication.connect(pg, "no_such_db") end
      assert error.code == "3D000"
      assert sql(ctx, "SELECT 1;") == "1\n"
    end
  end

  describe "start/4 and recv/2: pgoutput as transactions" do
    test "inserts with NULLs and odd text", ctx do
      odd = ["it's \"quoted\"", "back\\slash \\n", "ünï😀cödé", "line\nbreak\ttab\r", ""]

      values =
        odd
        |> Enum.with_index(1)
        |> Enum.map_join(", ", fn {text, i} -> "(#{i}, #{Psql.literal(text)}, NULL)" end)

      sql(ctx, "INSERT INTO t VALUES #{values}; INSERT INTO t VALUES (9, NULL, 9);")
      conn = stream(ctx)
      {txns, _raw, conn, _asm} = collect(conn, Pgoutput.new(), 2)

      rows =
        for {text, i} <- Enum.with_index(odd, 1),
            do: {:insert, @t, %{"id" => "#{i}", "body" => text, "n" => nil}}

      assert [{xid1, lsn1, [{:relation, @t, @columns} | ^rows]}, {xid2, lsn2, second}] = txns
      assert second == [{:insert, @t, %{"id" => "9", "body" => nil, "n" => "9"}}]
      assert xid2 > xid1 and lsn2 > lsn1
      Replication.close(conn)
    end

    test "an update leaving the 20 kB TOASTed value alone carries it in full", ctx do
      # 20 kB that no compression would shrink (STORAGE EXTERNAL stores it out of line anyway)
      big =
        for i <- 1..2_000,
            into: "",
            do: :crypto.hash(:md5, <<i::32>>) |> Base.encode16() |> binary_part(0, 10)

      assert byte_size(big) == 20_000
      sql(ctx, "INSERT INTO t VALUES (1, '#{big}', 1);")
      sql(ctx, "UPDATE t SET n = 2 WHERE id = 1;")
      sql(ctx, "DELETE FROM t WHERE id = 1;")
      conn = stream(ctx)
      {txns, raw, conn, _asm} = collect(conn, Pgoutput.new(), 3)

      row1 = %{"id" => "1", "body" => big, "n" => "1"}
      row2 = %{"id" => "1", "body" => big, "n" => "2"}

      assert events(txns) == [
               [{:relation, @t, @columns}, {:insert, @t, row1}],
               [{:update, @t, row1, row2}],
               [{:delete, @t, row2}]
             ]

      # on the wire: the new row has 'u' for the body, the old row (FULL) has it in full
      assert [{:update, _oid, {:old, ["1", ^big, "1"]}, ["1", :unchanged_toast, "2"]}] =
               for({:update, _, _, _} = u <- raw, do: u)

      assert [{:delete, _oid, {:old, ["1", ^big, "2"]}}] = for({:delete, _, _} = d <- raw, do: d)
      Replication.close(conn)
    end

    test "a key update, a delete, a truncate of two tables, a transaction's order", ctx do
      sql(ctx, "INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2); INSERT INTO t2 VALUES (7);")

      sql(ctx, """
      BEGIN;
      UPDATE t SET id = 10 WHERE id = 1;
      DELETE FROM t WHERE id = 2;
      INSERT INTO t VALUES (3, NULL, 3);
      UPDATE t SET body = 'c' WHERE id = 3;
      INSERT INTO t2 VALUES (8);
      COMMIT;
      TRUNCATE t, t2;
      """)

      conn = stream(ctx)
      {txns, _raw, conn, _asm} = collect(conn, Pgoutput.new(), 4)
      [_t_rows, _t2_row, txn, truncate] = events(txns)

      assert txn == [
               {:update, @t, %{"id" => "1", "body" => "a", "n" => "1"},
                %{"id" => "10", "body" => "a", "n" => "1"}},
               {:delete, @t, %{"id" => "2", "body" => "b", "n" => "2"}},
               {:insert, @t, %{"id" => "3", "body" => nil, "n" => "3"}},
               {:update, @t, %{"id" => "3", "body" => nil, "n" => "3"},
                %{"id" => "3", "body" => "c", "n" => "3"}},
               {:insert, @t2, %{"k" => "8"}}
             ]

      # one TRUNCATE message for both tables (PostgreSQL sends their Relation messages again
      # first: a truncate gives a table a new relfilenode; the columns are the same, no event)
      assert truncate == [{:truncate, @t}, {:truncate, @t2}]
      Replication.close(conn)
    end

    test "a column added mid-stream: a relation event precedes its rows", ctx do
      sql(ctx, "INSERT INTO t VALUES (1, 'a', 1);")
      conn = stream(ctx)
      {first, _raw, conn, asm} = collect(conn, Pgoutput.new(), 1)
      sql(ctx, "ALTER TABLE t ADD COLUMN extra text;")
      sql(ctx, "INSERT INTO t VALUES (2, 'b', 2, 'x'); INSERT INTO t VALUES (3, 'c', 3, NULL);")
      # the ALTER's transaction has no change for the publication: pgoutput sends nothing
      {txns, _raw, conn, _asm} = collect(conn, asm, 2)

      assert events(first) == [
               [
                 {:relation, @t, @columns},
                 {:insert, @t, %{"id" => "1", "body" => "a", "n" => "1"}}
               ]
             ]

      assert events(txns) == [
               [
                 {:relation, @t, @columns ++ [{"extra", 25}]},
                 {:insert, @t, %{"id" => "2", "body" => "b", "n" => "2", "extra" => "x"}}
               ],
               [{:insert, @t, %{"id" => "3", "body" => "c", "n" => "3", "extra" => nil}}]
             ]

      Replication.close(conn)
    end
  end

  describe "status_update/5 and a restart" do
    test "confirmed up to the 2nd of 4 transactions, a new connection gets the 3rd and 4th",
         %{pg: pg, db: db, slot: slot} = ctx do
      for i <- 1..4, do: sql(ctx, "INSERT INTO t VALUES (#{i}, 'txn #{i}', #{i});")
      conn = stream(ctx)
      {txns, _raw, conn, _asm} = collect(conn, Pgoutput.new(), 4)
      [{_, end1, _}, {_, end2, _}, {_, _, _}, {_, end4, _} = txn4] = txns
      [_, _, txn3, _] = txns

      # one walsender per slot at a time
      other = Replication.connect(pg, db)
      error = assert_raise Replication.Error, fn -> Replication.start(other, slot, "p", 0) end
      assert error.code == "55006" and error.message =~ "is active"
      Replication.close(other)

      # a reply asked for: the server answers with a keepalive
      :ok = Replication.status_update(conn, end4, end2, end2, true)
      assert wal_end = keepalive(conn)
      assert wal_end >= end4
      Replication.close(conn)

      # close waits for the end of the stream: the slot is released and confirmed at end2
      assert slot_row(pg, db, slot, "active") == "f"
      assert slot_row(pg, db, slot, "confirmed_flush_lsn") == Replication.format_lsn(end2)

      # from the confirmed position (0/0), from end2, from before it (end1: the same): the
      # server resends exactly the 3rd and 4th (the 5th, written now, marks the end)
      sql(ctx, "INSERT INTO t VALUES (5, 'txn 5', 5);")

      for start <- [0, end2, end1] do
        conn = stream(ctx, start)
        {txns, _raw, conn, _asm} = collect(conn, Pgoutput.new(), 3)
        [resent3, resent4, {_, end5, _}] = txns
        assert strip_relation(resent3) == strip_relation(txn3)
        assert resent4 == txn4
        assert end5 > end4
        Replication.close(conn)
        assert slot_row(pg, db, slot, "confirmed_flush_lsn") == Replication.format_lsn(end2)
      end
    end
  end

  describe "start/4 after a restart of the server" do
    test "from the durable LSN: only what follows, whatever the slot remembers", ctx do
      %{pg: pg, db: db, slot: slot} = ctx
      for i <- 1..3, do: sql(ctx, "INSERT INTO t VALUES (#{i}, 'txn #{i}', #{i});")
      conn = stream(ctx)
      {[_, {_, end2, _}, txn3], _raw, conn, _asm} = collect(conn, Pgoutput.new(), 3)
      :ok = Replication.status_update(conn, end2, end2, end2)
      Replication.close(conn)
      assert slot_row(pg, db, slot, "confirmed_flush_lsn") == Replication.format_lsn(end2)

      restart(pg)
      # PostgreSQL 15 may have kept the confirmation in memory only: at or before end2
      confirmed = Replication.parse_lsn(slot_row(pg, db, slot, "confirmed_flush_lsn"))
      assert confirmed <= end2
      sql(ctx, "INSERT INTO t VALUES (4, 'txn 4', 4);")

      conn = stream(ctx, end2)
      {[resent3, {_, _, txn4}], _raw, conn, _asm} = collect(conn, Pgoutput.new(), 2)
      assert strip_relation(resent3) == strip_relation(txn3)
      assert txn4 == [{:insert, @t, %{"id" => "4", "body" => "txn 4", "n" => "4"}}]
      Replication.close(conn)
    end
  end

  # a clean restart (`-l`: the server must not hold this VM's pipe open)
  defp restart(pg) do
    args = ["-D", pg.data, "-m", "fast", "-w", "-l", Path.join(pg.dir, "server.log"), "restart"]
    program = Path.join(pg.bin, "pg_ctl")

    {out, status} =
      case pg.as_user do
        nil -> System.cmd(program, args, stderr_to_stdout: true)
        user -> System.cmd("runuser", ["-u", user, "--", program | args], stderr_to_stdout: true)
      end

    assert status == 0, out
  end

  # a new assembler reports the table's columns with the first transaction that uses it
  defp strip_relation({xid, lsn, [{:relation, _, _} | events]}), do: {xid, lsn, events}
  defp strip_relation(txn), do: txn

  defp keepalive(conn) do
    case Replication.recv(conn, 1_000) do
      {[], conn} ->
        keepalive(conn)

      {messages, conn} ->
        case for({:keepalive, wal_end, _, _} <- messages, do: wal_end) do
          [] -> keepalive(conn)
          ends -> List.last(ends)
        end
    end
  end
end
