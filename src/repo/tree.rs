//! Path lookups in Git trees for a whole fleet at once: a trie of the requested
//! paths drives one walk of a commit's tree (`entries`) and one restricted diff of
//! two trees (history), descending only into subtrees some path needs and
//! skipping any subtree whose id did not change. Reads objects; never a work tree,
//! never a symlink target.

use std::cmp::Ordering;
use std::collections::HashMap;

use git2::{Oid, Repository, Tree};

const MODE_TREE: i32 = 0o040000;
const MODE_SYMLINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;
const MODE_TYPE_MASK: i32 = 0o170000;
const MODE_FILE_TYPE: i32 = 0o100000;

/// Above this many wanted names in one folder, a walk iterates the folder once
/// instead of binary-searching it per name (a `bots/` folder of 10,000 files).
const SCAN_THRESHOLD: usize = 32;

/// What a tree holds at a path: the entry's object id and Git file mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    pub id: Oid,
    pub mode: i32,
}

impl Slot {
    fn is_tree(self) -> bool {
        self.mode == MODE_TREE
    }

    /// A regular or executable file (legacy modes such as 100664 included).
    pub fn is_file(self) -> bool {
        self.mode & MODE_TYPE_MASK == MODE_FILE_TYPE
    }

    /// Why the entry is not a file, or `None` for a file.
    pub fn not_a_file(self) -> Option<&'static str> {
        match self.mode {
            _ if self.is_file() => None,
            MODE_SYMLINK => Some("symlink"),
            MODE_TREE => Some("folder"),
            MODE_GITLINK => Some("submodule"),
            _ => Some("special entry"),
        }
    }
}

/// The requested paths, split into components. Leaves carry the index of the
/// path in the caller's list.
#[derive(Default, Debug)]
pub struct PathTrie {
    root: Node,
    len: usize,
}

#[derive(Default, Debug)]
struct Node {
    children: HashMap<Box<[u8]>, Node>,
    /// Indexes of the requested paths ending here (duplicates share a node).
    leaves: Vec<usize>,
}

impl PathTrie {
    /// Builds the trie. A path with an empty, `.` or `..` component cannot name a
    /// tree entry and is left out (it is then simply absent).
    pub fn new<S: AsRef<str>>(paths: &[S]) -> PathTrie {
        let mut trie = PathTrie {
            root: Node::default(),
            len: paths.len(),
        };
        for (index, path) in paths.iter().enumerate() {
            let path = path.as_ref();
            let parts: Vec<&str> = path.split('/').collect();
            if parts
                .iter()
                .any(|p| p.is_empty() || *p == "." || *p == "..")
            {
                continue;
            }
            let mut node = &mut trie.root;
            for part in parts {
                node = node
                    .children
                    .entry(part.as_bytes().to_vec().into_boxed_slice())
                    .or_default();
            }
            node.leaves.push(index);
        }
        trie
    }

    /// Every requested path's entry in `tree`, indexed like the request.
    pub fn lookup(
        &self,
        git: &Repository,
        tree: &Tree<'_>,
    ) -> Result<Vec<Option<Slot>>, git2::Error> {
        let mut out = vec![None; self.len];
        collect(git, tree, &self.root, &mut out)?;
        Ok(out)
    }

    /// The requested paths whose entry differs between `newer` and `older`, each
    /// with its entry in `older`. Subtrees with equal ids are never opened.
    pub fn changes(
        &self,
        git: &Repository,
        newer: &Tree<'_>,
        older: &Tree<'_>,
    ) -> Result<Vec<(usize, Option<Slot>)>, git2::Error> {
        let mut out = Vec::new();
        diff(git, Some(newer), Some(older), &self.root, &mut out)?;
        Ok(out)
    }
}

fn slot(entry: &git2::TreeEntry<'_>) -> Slot {
    Slot {
        id: entry.id(),
        mode: entry.filemode(),
    }
}

fn collect(
    git: &Repository,
    tree: &Tree<'_>,
    node: &Node,
    out: &mut [Option<Slot>],
) -> Result<(), git2::Error> {
    let mut visit = |child: &Node, found: Slot| -> Result<(), git2::Error> {
        for &i in &child.leaves {
            out[i] = Some(found);
        }
        if !child.children.is_empty() && found.is_tree() {
            let sub = git.find_tree(found.id)?;
            collect(git, &sub, child, out)?;
        }
        Ok(())
    };
    if node.children.len() > SCAN_THRESHOLD {
        for entry in tree.iter() {
            if let Some(child) = node.children.get(entry.name_bytes()) {
                visit(child, slot(&entry))?;
            }
        }
    } else {
        for (name, child) in &node.children {
            if let Some(entry) = tree.get_name_bytes(name) {
                visit(child, slot(&entry))?;
            }
        }
    }
    Ok(())
}

fn diff(
    git: &Repository,
    newer: Option<&Tree<'_>>,
    older: Option<&Tree<'_>>,
    node: &Node,
    out: &mut Vec<(usize, Option<Slot>)>,
) -> Result<(), git2::Error> {
    if let (Some(n), Some(o)) = (newer, older)
        && n.id() == o.id()
    {
        return Ok(());
    }
    let get = |t: Option<&Tree<'_>>, name: &[u8]| {
        t.and_then(|t| t.get_name_bytes(name)).map(|e| slot(&e))
    };
    let mut compare = |name: &[u8], child: &Node| -> Result<(), git2::Error> {
        let (n, o) = (get(newer, name), get(older, name));
        if n == o {
            return Ok(());
        }
        for &i in &child.leaves {
            out.push((i, o));
        }
        if !child.children.is_empty() {
            let open = |s: Option<Slot>| -> Result<Option<Tree<'_>>, git2::Error> {
                match s {
                    Some(s) if s.is_tree() => git.find_tree(s.id).map(Some),
                    _ => Ok(None),
                }
            };
            let (tn, to) = (open(n)?, open(o)?);
            diff(git, tn.as_ref(), to.as_ref(), child, out)?;
        }
        Ok(())
    };
    match (newer, older) {
        (Some(n), Some(o)) if node.children.len() > SCAN_THRESHOLD => {
            for name in changed_names(n, o) {
                if let Some((name, child)) = node.children.get_key_value(name.as_slice()) {
                    compare(name, child)?;
                }
            }
        }
        _ => {
            for (name, child) in &node.children {
                compare(name, child)?;
            }
        }
    }
    Ok(())
}

/// Names whose entry differs between two trees, found by merging both entry
/// lists in Git's tree order. Never misses a change, even on a mis-sorted tree:
/// an entry is skipped only when an identical one is matched on the other side.
fn changed_names(a: &Tree<'_>, b: &Tree<'_>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut ia = a.iter().peekable();
    let mut ib = b.iter().peekable();
    loop {
        match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some(x), None) => {
                out.push(x.name_bytes().to_vec());
                ia.next();
            }
            (None, Some(y)) => {
                out.push(y.name_bytes().to_vec());
                ib.next();
            }
            (Some(x), Some(y)) => {
                let (sx, sy) = (slot(x), slot(y));
                match git_order(x.name_bytes(), sx.is_tree(), y.name_bytes(), sy.is_tree()) {
                    Ordering::Less => {
                        out.push(x.name_bytes().to_vec());
                        ia.next();
                    }
                    Ordering::Greater => {
                        out.push(y.name_bytes().to_vec());
                        ib.next();
                    }
                    Ordering::Equal => {
                        if sx != sy {
                            out.push(x.name_bytes().to_vec());
                        }
                        ia.next();
                        ib.next();
                    }
                }
            }
        }
    }
    out
}

/// Git sorts tree entries by name, comparing a folder as if its name ended in `/`.
fn git_order(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> Ordering {
    let n = a.len().min(b.len());
    match a[..n].cmp(&b[..n]) {
        Ordering::Equal => {}
        other => return other,
    }
    let end = |name: &[u8], tree: bool| name.get(n).copied().unwrap_or(if tree { b'/' } else { 0 });
    end(a, a_tree).cmp(&end(b, b_tree))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_sort_as_if_their_name_ended_in_a_slash() {
        assert_eq!(git_order(b"a", true, b"a.b", false), Ordering::Greater);
        assert_eq!(git_order(b"a", false, b"a.b", false), Ordering::Less);
        assert_eq!(git_order(b"a", true, b"a", true), Ordering::Equal);
        assert_ne!(git_order(b"a", true, b"a", false), Ordering::Equal);
    }

    #[test]
    fn paths_that_cannot_name_an_entry_are_left_out() {
        let trie = PathTrie::new(&["a/b", "", "a//b", "./a", "a/../b", "c"]);
        assert_eq!(trie.len, 6);
        assert_eq!(trie.root.children.len(), 2);
    }
}
