"""Tests of .ci/module-cycles over small crates written to temporary directories.

Run: python3 -m unittest discover -s .ci -p 'test_*.py'
"""

import contextlib
import importlib.machinery
import importlib.util
import io
import tempfile
import textwrap
import unittest
from pathlib import Path

_path = Path(__file__).resolve().parent / "module-cycles"
_loader = importlib.machinery.SourceFileLoader("module_cycles", str(_path))
_spec = importlib.util.spec_from_loader("module_cycles", _loader)
module_cycles = importlib.util.module_from_spec(_spec)
_loader.exec_module(module_cycles)


class ModuleCycles(unittest.TestCase):
    def check(self, files):
        """Writes a workspace with one crate `c` holding these src/ files; (exit code, output)."""
        with tempfile.TemporaryDirectory() as workspace:
            root = Path(workspace)
            (root / "c").mkdir()
            (root / "c" / "Cargo.toml").write_text('[package]\nname = "c"\n')
            for name, text in files.items():
                path = root / "c" / "src" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(textwrap.dedent(text))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = module_cycles.main(["module-cycles", str(root)])
            return code, out.getvalue()

    def test_two_modules_importing_each_other_are_a_cycle_naming_both_files_and_lines(self):
        code, out = self.check({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::Thing;\npub fn helper() {}\n",
            "b.rs": "pub struct Thing;\npub fn f() { crate::a::helper(); }\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("crate::a -> crate::b -> crate::a", out)
        self.assertIn("c/src/a.rs:1 imports c/src/b.rs: use crate::b::Thing;", out)
        self.assertIn("c/src/b.rs:2 imports c/src/a.rs: crate::a::helper", out)

    def test_a_longer_cycle_through_brace_groups_and_nested_files(self):
        code, out = self.check({
            "lib.rs": "pub mod net;\nmod store;\n",
            "net/mod.rs": "pub mod http;\n",
            "net/http.rs": "use crate::{store::{self, Cache}, other};\n",
            "store.rs": "use super::net::http::Client as _;\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("crate::net::http -> crate::store -> crate::net::http", out)

    def test_three_modules_in_a_ring(self):
        code, out = self.check({
            "lib.rs": "mod a;\nmod b;\nmod c;\n",
            "a.rs": "use crate::b::B;\n",
            "b.rs": "use crate::c::C;\n",
            "c.rs": "use crate::a::A;\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("crate::a -> crate::b -> crate::c -> crate::a", out)

    def test_a_parent_re_exporting_its_child_is_no_cycle(self):
        code, out = self.check({
            "lib.rs": "mod child;\npub use child::Widget;\npub use self::child::*;\npub struct Shared;\n",
            "child.rs": "use super::Shared;\npub struct Widget(crate::Shared);\n",
        })
        self.assertEqual(code, 0, out)

    def test_a_child_using_its_parents_item_imports_the_parent(self):
        # shop -> pricing -> shop::cart -> (super::Item) shop: a cycle only because the
        # child's `super::Item` counts as importing its parent.
        files = {
            "lib.rs": "mod shop;\nmod pricing;\n",
            "shop/mod.rs": "pub mod cart;\npub struct Item;\nfn total() { crate::pricing::price(); }\n",
            "shop/cart.rs": "use super::Item;\npub struct Cart;\n",
            "pricing.rs": "use crate::shop::cart::Cart;\npub fn price() {}\n",
        }
        code, out = self.check(files)
        self.assertEqual(code, 1, out)
        self.assertIn("c/src/shop/cart.rs:1 imports c/src/shop/mod.rs: use super::Item;", out)
        # Without the child's import of its parent there is none.
        files["shop/cart.rs"] = "pub struct Cart;\n"
        code, out = self.check(files)
        self.assertEqual(code, 0, out)

    def test_a_name_re_exported_by_the_root_leads_to_its_module(self):
        code, out = self.check({
            "lib.rs": "mod registry;\nmod signing;\npub use registry::{Client, connect};\n",
            "registry.rs": "use crate::signing::sign;\npub struct Client;\npub fn connect() {}\n",
            "signing.rs": "pub fn sign(c: &crate::Client) {}\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("crate::registry -> crate::signing -> crate::registry", out)

    def test_test_modules_comments_and_strings_are_ignored(self):
        code, out = self.check({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": textwrap.dedent("""\
                pub fn f() {}
                // use crate::b::B;
                /* crate::b::g() */
                const S: &str = "crate::b::g";
                const R: &str = r#"use crate::b::B;"#;
                fn lifetimes<'a>(x: &'a str) -> char { let _ = x; 'c' }
                #[cfg(test)]
                mod tests {
                    use crate::b::B;
                }
                #[cfg(test)]
                mod more_tests;
                """),
            "a/more_tests.rs": "use crate::b::B;\n",
            "b.rs": "use crate::a::f;\npub struct B;\n",
        })
        self.assertEqual(code, 0, out)

    def test_a_binary_crates_modules_are_checked_too(self):
        code, out = self.check({
            "main.rs": "mod enforce;\nmod config;\nfn main() { enforce::run(); }\n",
            "enforce.rs": "use crate::config::Config;\npub fn run() {}\n",
            "config.rs": "pub struct Config;\nfn f() { super::enforce::run() }\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("crate::config -> crate::enforce -> crate::config", out)

    def test_the_root_and_its_modules_using_crate_items_is_no_cycle(self):
        code, out = self.check({
            "main.rs": "mod enforce;\npub struct Args;\nfn main() { enforce::run(&Args); }\n",
            "enforce.rs": "use crate::Args;\npub fn run(_: &Args) {}\n",
        })
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
