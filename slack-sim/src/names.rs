//! Static vocabularies the generator draws from: person and company names, time zones, job
//! titles, client user agents and ISPs.

pub(crate) const FIRST_NAMES: [&str; 64] = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
    "Steven",
    "Ashley",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "Aisha",
    "Wei",
    "Priya",
    "Kenji",
    "Sofia",
    "Lukas",
    "Fatima",
    "Mateo",
    "Olga",
    "Ahmed",
    "Ingrid",
    "Tomasz",
    "Chloe",
    "Rahul",
    "Yuki",
    "Amara",
    "Diego",
    "Hannah",
    "Omar",
    "Leila",
    "Niamh",
    "Arjun",
    "Freya",
    "Kwame",
];

pub(crate) const LAST_NAMES: [&str; 64] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Mueller",
    "Schmidt",
    "Kowalski",
    "Tanaka",
    "Sato",
    "Patel",
    "Singh",
    "Okafor",
    "Mensah",
    "Novak",
    "Larsen",
    "Dubois",
    "Rossi",
    "Murphy",
];

/// Multiplier coprime to 64 * 64, so consecutive indices map to distinct name pairs.
pub(crate) const NAME_STRIDE: u64 = 2897;

pub(crate) const COMPANIES: [&str; 16] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Massive Dynamic",
    "Aperture",
    "Gringotts",
    "Oscorp",
    "Stark",
    "Monarch",
];

pub(crate) const COMPANY_SUFFIXES: [&str; 6] = ["Corp", "Labs", "Industries", "Group", "Systems", "Co"];

pub(crate) const GUEST_DOMAINS: [&str; 3] = ["partner.example", "contractor.example", "agency.example"];

pub(crate) const TITLES: [&str; 14] = [
    "Software Engineer",
    "Senior Software Engineer",
    "Account Executive",
    "Product Manager",
    "Product Designer",
    "Support Specialist",
    "Data Analyst",
    "Recruiter",
    "Finance Manager",
    "Marketing Lead",
    "Engineering Manager",
    "Sales Engineer",
    "Legal Counsel",
    "Office Manager",
];

pub(crate) const BOT_NAMES: [&str; 16] = [
    "deploy-bot",
    "jira",
    "github",
    "pagerduty",
    "standup-bot",
    "polly",
    "donut",
    "giphy",
    "zoom",
    "google-drive",
    "salesforce",
    "datadog",
    "sentry",
    "circleci",
    "greenhouse",
    "workday",
];

pub(crate) const APP_NAMES: [&str; 8] = [
    "workflow-builder",
    "expense-app",
    "onboarding-app",
    "hr-helper",
    "survey-app",
    "okr-tracker",
    "lunch-train",
    "it-helpdesk",
];

/// A time zone as Slack reports it, plus where its offices are for access-log geolocation.
pub(crate) struct Zone {
    pub tz: &'static str,
    pub label: &'static str,
    pub offset: i64,
    pub country: &'static str,
    pub region: &'static str,
}

pub(crate) const ZONES: [Zone; 8] = [
    Zone { tz: "America/Los_Angeles", label: "Pacific Standard Time", offset: -28800, country: "US", region: "CA" },
    Zone { tz: "America/Los_Angeles", label: "Pacific Standard Time", offset: -28800, country: "US", region: "WA" },
    Zone { tz: "America/New_York", label: "Eastern Standard Time", offset: -18000, country: "US", region: "NY" },
    Zone { tz: "Europe/London", label: "Greenwich Mean Time", offset: 0, country: "GB", region: "ENG" },
    Zone { tz: "Europe/Berlin", label: "Central European Time", offset: 3600, country: "DE", region: "BE" },
    Zone { tz: "Asia/Kolkata", label: "India Standard Time", offset: 19800, country: "IN", region: "KA" },
    Zone { tz: "Asia/Tokyo", label: "Japan Standard Time", offset: 32400, country: "JP", region: "13" },
    Zone {
        tz: "Australia/Sydney",
        label: "Australian Eastern Daylight Time",
        offset: 39600,
        country: "AU",
        region: "NSW",
    },
];

pub(crate) const DESKTOP_AGENTS: [&str; 4] = [
    "Slack/4.41.105 (darwin 14.6.1) Slack_SSB/4.41.105 Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.6613.186 Electron/32.2.5 Safari/537.36",
    "Slack/4.41.105 (win32 10.0.22631) Slack_SSB/4.41.105 Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.6613.186 Electron/32.2.5 Safari/537.36",
    "Slack/4.40.128 (darwin 13.6.9) Slack_SSB/4.40.128 Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.6613.120 Electron/32.0.1 Safari/537.36",
    "Slack/4.41.105 (linux 6.8.0-45-generic) Slack_SSB/4.41.105 Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.6613.186 Electron/32.2.5 Safari/537.36",
];

pub(crate) const MOBILE_AGENTS: [&str; 3] = [
    "com.tinyspeck.chatlyio/24.10.10 (iPhone; iOS 17.6.1; Scale/3.00)",
    "com.tinyspeck.chatlyio/24.09.20 (iPhone; iOS 18.0; Scale/3.00)",
    "Slack/24.10.10.0 (Android 14; Pixel 8; Build/AP2A.240905.003)",
];

pub(crate) const BROWSER_AGENTS: [&str; 3] = [
    "SlackWeb Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "SlackWeb Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "SlackWeb Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
];

pub(crate) const OFFICE_ISPS: [&str; 3] = ["Example Fiber Business", "Sample Networks", "Demo Telecom Enterprise"];
pub(crate) const HOME_ISPS: [&str; 3] = ["Example Broadband", "Sample Cable", "Demo DSL"];
pub(crate) const MOBILE_ISPS: [&str; 3] = ["Example Mobile", "Sample Wireless", "Demo Cellular"];

/// Extra workspaces of an Enterprise Grid organisation are named after business units.
pub(crate) const WORKSPACE_UNITS: [&str; 8] =
    ["Sales", "Engineering", "Support", "Marketing", "Operations", "Research", "Finance", "Legal"];

/// Departments: the HR export's `department` column, and the user groups every workspace has.
pub(crate) const DEPARTMENTS: [&str; 8] =
    ["engineering", "sales", "support", "marketing", "finance", "people", "legal", "design"];
