;; huge_data: a data segment of 1.5 MiB aimed at a memory of one 64 KiB page.
;;
;; A segment that large cannot be stored as text here, so this file is the module without
;; its data: `corelane_modules::hostile()` builds the binary from it and appends a data
;; section with one active segment of 1.5 MiB at offset 0, which keeps the module under the
;; host's 2 MiB limit. Loaded from this file alone, the module is harmless. (It names
;; nothing, so that its binary ends with the code section, which a data section may follow.)
;;
;; Reducers:
;;
;;   noop  args: ignored   result: empty (never reached once the segment is there)
;;
;; Hostile case: a huge data segment. The segment does not fit in the memory, so making an
;; instance traps: every call must end with CallError::Trap { code: MemoryOutOfBounds }, and
;; no instance is ever made.
(module
  (memory (export "memory") 1)
  (func (export "noop") (param i32 i32) (result i64)
    (i64.const 0))
)
