//! Deterministic generators of nasty inputs: module paths, escaped paths, versions and globs.

/// A small seeded PRNG (xorshift64*), so every run sees the same inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// Characters that exercise every path rule.
const PATH_ATOMS: &[&str] = &[
    "a",
    "b",
    "z",
    "m",
    "x",
    "y",
    "A",
    "Q",
    "Z",
    "0",
    "1",
    "9",
    "-",
    "-",
    ".",
    ".",
    "_",
    "~",
    "!",
    "+",
    "@",
    "%",
    " ",
    "é",
    "K",
    "\u{212a}",
    "\u{130}",
    "\u{200b}",
    "\u{fffd}",
    "\u{1f600}",
    "\u{e000}",
    "\u{378}",
    "\u{a0}",
    "\u{3000}",
    "..",
    ":",
    "*",
    "\\",
    "\"",
    "'",
    "`",
    "\0",
    "\x7f",
    "\t",
    ";",
    ",",
    "=",
    "#",
    "$",
    "&",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "|",
    "<",
    ">",
    "?",
    "^",
    "ß",
    "Ǆ",
    "ǅ",
    "\u{10ffff}",
    "\u{2028}",
    "\u{feff}",
];

const ELEMENTS: &[&str] = &[
    "example.com",
    "golang.org",
    "github.com",
    "gopkg.in",
    "x",
    "mod",
    "text",
    "Foo",
    "cmd",
    "internal",
    "vendor",
    "v0",
    "v1",
    "v2",
    "v3",
    "v02",
    "v2.0",
    "v10",
    "com1",
    "CON",
    "aux.txt",
    "nul",
    "LPT9.x",
    "prn",
    "com0",
    "a~1",
    "abc~12",
    "x.",
    ".x",
    ".",
    "..",
    "...",
    "-x",
    "x-",
    "go.mod",
    "a.b",
    "foo.v1",
    "foo.v2",
    "foo.v0",
    "yaml.v2-unstable",
    "x.v1-unstable",
    "~",
    "_",
    "a_b",
    "a+b",
    "@v",
    "a@v1.0.0",
    "ÄÖ",
    "kelvin\u{212a}",
    "",
];

const HOSTS: &[&str] = &[
    "example.com",
    "golang.org/x",
    "github.com/Azure",
    "gopkg.in",
    "rsc.io",
    "k8s.io",
    "x.y",
    "Example.com",
    "exa_mple.com",
    "-x.com",
    "localhost",
    "a..b",
    "a.b.",
    "127.0.0.1",
    "xn--bcher-kva.example",
    "e\u{e9}.com",
];

/// A random path of any shape: mostly plausible module paths with one or two twists.
pub fn path(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => {
            // gopkg.in/x.vN and friends.
            let name = rng.pick(&["yaml", "check", "Yaml", "x", "a.b", "", "v"]);
            let v = rng.pick(&[
                ".v1",
                ".v2",
                ".v0",
                ".v10",
                ".v02",
                ".v",
                "",
                ".v1-unstable",
                "/v2",
            ]);
            let user = if rng.chance(30) {
                format!("{}/", rng.pick(&["user", "User", "u.v"]))
            } else {
                String::new()
            };
            let tail = if rng.chance(20) {
                format!("/{}", rng.pick(ELEMENTS))
            } else {
                String::new()
            };
            format!("gopkg.in/{user}{name}{v}{tail}")
        }
        1..=5 => {
            let mut p = rng.pick(HOSTS).to_string();
            for _ in 0..rng.below(4) {
                p.push('/');
                p.push_str(rng.pick(ELEMENTS));
            }
            if rng.chance(30) {
                p.push_str(rng.pick(&[
                    "/v2", "/v1", "/v0", "/v3", "/v02", "/v2.0", "/V2", ".v2", "/v2/", "/",
                ]));
            }
            if rng.chance(35) {
                mutate(rng, &mut p);
            }
            p
        }
        6..=7 => {
            let mut p = String::new();
            for i in 0..1 + rng.below(4) {
                if i > 0 {
                    p.push('/');
                }
                for _ in 0..rng.below(6) {
                    p.push_str(rng.pick(PATH_ATOMS));
                }
            }
            p
        }
        _ => {
            let mut p = rng.pick(ELEMENTS).to_string();
            for _ in 0..rng.below(3) {
                p.push_str(rng.pick(&["/", "//", "/./", "/../", "."]));
                p.push_str(rng.pick(ELEMENTS));
            }
            if rng.chance(50) {
                mutate(rng, &mut p);
            }
            p
        }
    }
}

/// Inserts, replaces or appends one nasty atom.
pub fn mutate(rng: &mut Rng, p: &mut String) {
    let atom = rng.pick(PATH_ATOMS);
    let boundaries: Vec<usize> = (0..=p.len()).filter(|&i| p.is_char_boundary(i)).collect();
    let at = rng.pick(&boundaries);
    match rng.below(3) {
        0 => p.insert_str(at, atom),
        1 => {
            let end = boundaries.iter().copied().find(|&b| b > at).unwrap_or(at);
            p.replace_range(at..end, atom);
        }
        _ => p.push_str(atom),
    }
}

/// A case-encoded string for the unescape functions: valid escapes, bare capitals, dangling `!`.
pub fn escaped(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..1 + rng.below(12) {
        s.push_str(rng.pick(&[
            "a",
            "b",
            "z",
            "!a",
            "!z",
            "!",
            "!!",
            "!A",
            "A",
            "Z",
            ".",
            "/",
            "-",
            "~",
            "é",
            "0",
            "example.com/",
            "github.com/!azure/",
            "v1.0.0",
            "!v",
            "+",
            "_",
        ]));
    }
    s
}

fn number(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "0".into(),
        1 => format!("0{}", rng.below(10)),
        2 => rng.digits(20),
        3 => String::new(),
        _ => rng.below(25).to_string(),
    }
}

fn pre_ident(rng: &mut Rng) -> String {
    rng.pick(&[
        "alpha", "beta", "rc1", "0", "01", "1", "x-y", "", "A", "pre", "0a", "-", "é", "rc.1",
    ])
    .to_string()
}

fn timestamp(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => rng.digits(14),
        1 => "20230229120000".into(),
        2 => "20240229235959".into(),
        3 => "19700101000000".into(),
        4 => rng.digits(13),
        5 => "20231301000000".into(),
        6 => "20230101246000".into(),
        _ => format!(
            "20{:02}{:02}{:02}{:02}{:02}{:02}",
            rng.below(30),
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        ),
    }
}

fn rev(rng: &mut Rng) -> String {
    rng.pick(&[
        "abcdefabcdef",
        "0123456789ab",
        "ABCDEF012345",
        "abc",
        "",
        "abcdefabcdef0",
        "g1h2",
        "deadbeef-x",
    ])
    .to_string()
}

/// A random version string: valid and broken semver, the three pseudo-version forms,
/// `+incompatible`, build metadata, shorthands.
pub fn version(rng: &mut Rng) -> String {
    let build = |rng: &mut Rng| -> String {
        match rng.below(10) {
            0..=1 => "+incompatible".into(),
            2 => format!(
                "+{}",
                rng.pick(&["meta", "build.1", "x..y", "", "é", "0", "a-b"])
            ),
            3 => "+incompatible+x".into(),
            _ => String::new(),
        }
    };
    let v = match rng.below(12) {
        0..=2 => {
            let mut v = format!("v{}.{}.{}", number(rng), number(rng), number(rng));
            if rng.chance(30) {
                v.push('-');
                v.push_str(&pre_ident(rng));
                if rng.chance(30) {
                    v.push('.');
                    v.push_str(&pre_ident(rng));
                }
            }
            v
        }
        3 => format!("v{}", number(rng)),
        4 => format!("v{}.{}", number(rng), number(rng)),
        5 => format!("v{}.0.0-{}-{}", rng.below(4), timestamp(rng), rev(rng)),
        6 => format!(
            "v{}.{}.{}-0.{}-{}",
            rng.below(3),
            rng.below(5),
            1 + rng.below(9),
            timestamp(rng),
            rev(rng)
        ),
        7 => format!(
            "v{}.{}.{}-{}.0.{}-{}",
            rng.below(3),
            rng.below(5),
            rng.below(9),
            pre_ident(rng),
            timestamp(rng),
            rev(rng)
        ),
        8 => rng
            .pick(&[
                "",
                "v",
                "1.2.3",
                "v1.2.3.4",
                " v1.0.0",
                "v1.0.0 ",
                "latest",
                "master",
                "V1.0.0",
                "v1.0.0-",
                "v1.0.0+",
                "v1..0",
                "v1.0.0-0.0",
                "vé",
                "v0.0.0-00010101000000-000000000000",
                "v1.2.3-0.20200101000000-abcdefabcdef",
                "v2.0.0-20200101000000-abcdefabcdef",
                "v0.0.0-20200101000000-abcdefabcdef+incompatible",
                "v1.2.3-pre.0.20200101000000-abcdefabcdef",
                "v1.0.0-20200101000000-abcdefabcdef",
                "v1.0.0-0.20200101000000-abcdefabcdef",
            ])
            .to_string(),
        _ => format!("v{}.{}.{}", rng.below(4), rng.below(12), rng.below(12)),
    };
    let mut v = v + &build(rng);
    if rng.chance(5) {
        mutate(rng, &mut v);
    }
    v
}

/// A GOPRIVATE-style comma-separated glob list.
pub fn globs(rng: &mut Rng) -> String {
    let mut parts = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let mut g = String::new();
        for _ in 0..1 + rng.below(4) {
            g.push_str(rng.pick(&[
                "*",
                "?",
                "[a-z]",
                "[^a]",
                "[!x]",
                "\\*",
                "\\",
                "[",
                "]",
                "example.com",
                "golang.org",
                "x",
                "*.com",
                "/",
                "/",
                "text",
                "github.com/Azure",
                "[a-]",
                "[]a]",
                "[\\]]",
                "é",
                "*/text",
                "gopkg.in",
                "[a-\\z]",
                "[z-a]",
                "",
            ]));
        }
        parts.push(g);
    }
    parts.join(",")
}
