;; table_bomb: reducers that grow a table until the host refuses, then trap.
;;
;; Reducers:
;;
;;   grow      args: ignored
;;             grows the funcref table by 1000 elements at a time until table.grow refuses
;;             (returns -1), then executes `unreachable`. The table has no declared maximum,
;;             so the host's limit is the one that refuses.
;;   grow_max  args: ignored
;;             asks for 2^32 - 1 more elements in one table.grow, and executes `unreachable`
;;             when it is refused.
;;
;; Hostile case: a table growth bomb. Both reducers must end with CallError::TableLimit (the
;; database's table limit).
(module
  (memory (export "memory") 1)
  (table $table 1 funcref)

  (func (export "grow") (param $args_ptr i32) (param $args_len i32) (result i64)
    (block $refused
      (loop $grow_more
        (br_if $refused
          (i32.eq (table.grow $table (ref.null func) (i32.const 1000)) (i32.const -1)))
        (br $grow_more)))
    unreachable)

  (func (export "grow_max") (param $args_ptr i32) (param $args_len i32) (result i64)
    ;; -1 is the unsigned delta 2^32 - 1.
    (if (i32.eq (table.grow $table (ref.null func) (i32.const -1)) (i32.const -1))
      (then unreachable))
    (i64.const 0))
)
