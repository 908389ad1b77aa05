defmodule LsmIndex.DemoTest do
  # The end-to-end demo's decoder and durable shape log, without PostgreSQL.
  use ExUnit.Case, async: true

  alias LsmIndex.Demo.{ShapeLog, Shapes, Slot, Wal2json}

  describe "Wal2json.decode/1" do
    # rows as wal2json 2.5 wrote them (format 2, no types) for a table of every kind of value
    test "rows of wal2json 2.5, values as PostgreSQL's text" do
      insert =
        ~S({"action":"I","schema":"public","table":"t","columns":[{"name":"id","value":2},) <>
          ~S({"name":"n","value":1.50},{"name":"f","value":1e+300},{"name":"b","value":false},) <>
          ~S({"name":"u","value":null},{"name":"ts","value":"2024-01-01 04:30:00+00"},) <>
          ~S({"name":"txt","value":"a\"b\\c\n\tü😀|x"}]})

      assert {:insert, {"public", "t"}, row} = Wal2json.decode(insert)

      assert row == %{
               "id" => "2",
               "n" => "1.50",
               "f" => "1e+300",
               "b" => "f",
               "u" => nil,
               "ts" => "2024-01-01 04:30:00+00",
               "txt" => "a\"b\\c\n\tü😀|x"
             }

      update =
        ~S({"action":"U","schema":"public","table":"t","columns":[{"name":"id","value":2},) <>
          ~S({"name":"b","value":true}],"identity":[{"name":"id","value":2},{"name":"b","value":null}]})

      assert Wal2json.decode(update) ==
               {:update, {"public", "t"}, %{"id" => "2", "b" => nil}, %{"id" => "2", "b" => "t"}}

      delete = ~S({"action":"D","schema":"s","table":"t","identity":[{"name":"id","value":-3}]})
      assert Wal2json.decode(delete) == {:delete, {"s", "t"}, %{"id" => "-3"}}

      assert Wal2json.decode(~S({"action":"T","schema":"public","table":"t"})) ==
               {:truncate, {"public", "t"}}

      assert Wal2json.decode(~S({"action":"B"})) == :begin
      assert Wal2json.decode(~S({"action":"C","lsn":"0/152C3C0"})) == :commit
      assert Wal2json.decode(~S({"action":"M"})) == {:other, "M"}
    end

    test "an update without its old row (no REPLICA IDENTITY FULL) is refused" do
      assert_raise ArgumentError, ~r/REPLICA IDENTITY/, fn ->
        Wal2json.decode(~S({"action":"D","schema":"s","table":"t"}))
      end
    end
  end

  describe "Wal2json.parse/1" do
    test "escapes, surrogate pairs, numbers verbatim, nesting" do
      assert Wal2json.parse(~S("\u00e9\ud83d\ude00\/\b\f\r")) == "é😀/\b\f\r"

      assert Wal2json.parse(~S([-0.50e+10, 007, true, null, {"a": []}, {}])) ==
               [{:number, "-0.50e+10"}, {:number, "007"}, true, nil, %{"a" => []}, %{}]

      for bad <- [~S("\ud83d"), ~S("\ude00x"), ~S("abc), ~S({"a" 1}), ~S([1,]), "[1] x", ~S("\q")] do
        assert_raise ArgumentError, fn -> Wal2json.parse(bad) end
      end
    end
  end

  describe "ShapeLog" do
    @describetag :tmp_dir
    test "frames replay in order; a torn tail is cut; a bad checksum is an error", %{tmp_dir: dir} do
      path = Path.join(dir, "shapes.log")
      log = ShapeLog.open(path)

      log =
        log
        |> ShapeLog.apply_ops([{1, :add, 10}, {1, :add, 11}, {2, :add, 10}])
        |> ShapeLog.commit(100)

      log = log |> ShapeLog.apply_ops([{1, :del, 10}, {2, :clear}]) |> ShapeLog.commit(200)
      # applied, never committed: lost in a crash
      log = ShapeLog.apply_ops(log, [{3, :add, 1}])
      :ok = ShapeLog.close(log)

      good = File.read!(path)
      File.write!(path, good <> <<0, 0, 0, 40, 1, 2>>)
      log = ShapeLog.open(path)
      assert {log.lsn, log.frames} == {200, 2}
      assert ShapeLog.rows(log, 1) == MapSet.new([11])
      assert ShapeLog.rows(log, 2) == MapSet.new()
      assert ShapeLog.rows(log, 3) == MapSet.new()
      :ok = ShapeLog.close(log)
      assert File.read!(path) == good

      <<head::binary-size(12), byte, rest::binary>> = good
      File.write!(path, <<head::binary, Bitwise.bxor(byte, 1), rest::binary>>)
      assert_raise RuntimeError, ~r/checksum mismatch/, fn -> ShapeLog.open(path) end
    end
  end

  describe "Shapes" do
    test "the same seed makes the same shapes; parameters become untyped literals" do
      shapes = Shapes.generate(2000, 7, 200, 40)
      assert shapes == Shapes.generate(2000, 7, 200, 40)
      assert Enum.map(shapes, & &1.id) == Enum.to_list(0..1999)
      assert Enum.count(shapes, &(&1.params == [] and &1.id < 3)) == 3

      assert Shapes.sql(%{where: "user_id = $1 OR project_id = $2", params: ["7", "it's"]}) ==
               "user_id = '7' OR project_id = 'it''s'"
    end
  end

  describe "Slot LSNs" do
    test "parse_lsn/1 and format_lsn/1 round-trip PostgreSQL's X/Y" do
      assert Slot.parse_lsn("0/152C3F0") == 0x152C3F0
      assert Slot.parse_lsn("1A/0") == 0x1A_0000_0000
      assert Slot.format_lsn(0x1A_0152_C3F0) == "1A/152C3F0"
    end
  end
end
