const fs = require("fs");
const secret = (key) => fs.readFileSync(`/run/secrets/${key}`, "utf8").replace(/\n+$/, "");
const admin = db.getSiblingDB("admin");
if (!admin.auth("admin", secret("mongo_admin")).ok) { throw new Error("admin login refused"); }
const role = process.env.ROLE;
const names = process.env.DATABASES.split(" ");
const home = db.getSiblingDB(names[0]);
